package sshx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// ErrHostKeyMismatch is returned (wrapped) when the server presents a host key
// other than the pinned Config.HostKey. It is never retried: either the
// instance is not the one we launched or someone is in the middle.
var ErrHostKeyMismatch = errors.New("sshx: host key mismatch")

// ExitError reports that the command ran and exited unsuccessfully. It is
// never retried: the command has run, and running it again is the caller's
// decision.
type ExitError struct {
	Addr    string // instance address passed to Run
	Command string
	// ExitStatus is the command's exit status; -1 if it was killed by a signal.
	ExitStatus int
	// Signal is the signal name without "SIG" ("KILL") if the command was
	// killed by a signal, otherwise "".
	Signal string
	Stderr []byte
}

func (e *ExitError) Error() string {
	what := fmt.Sprintf("exited with status %d", e.ExitStatus)
	if e.Signal != "" {
		what = "killed by signal " + e.Signal
	}
	msg := fmt.Sprintf("sshx: %q on %s %s", e.Command, e.Addr, what)
	if s := bytes.TrimSpace(e.Stderr); len(s) > 0 {
		const max = 512
		if len(s) > max {
			s = append(s[:max:max], "..."...)
		}
		msg += ": " + string(s)
	}
	return msg
}

// RetryError reports that every connection attempt failed with a retryable
// (connection-level) error until the retry deadline passed or ctx ended.
// It wraps the last attempt's error and, if ctx ended, ctx.Err(), so both
// errors.Is(err, syscall.ECONNRESET) and errors.Is(err, context.Canceled)
// work as expected.
type RetryError struct {
	Addr     string // instance address passed to Run
	Attempts int
	Err      error // last connection-level error
	ctxErr   error
}

func (e *RetryError) Error() string {
	msg := fmt.Sprintf("sshx: %s unreachable after %d attempt(s)", e.Addr, e.Attempts)
	if e.ctxErr != nil {
		msg += " (" + e.ctxErr.Error() + ")"
	}
	return msg + ": " + e.Err.Error()
}

func (e *RetryError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.Err, e.ctxErr}
	}
	return []error{e.Err}
}

// retryable reports whether err is a connection-level failure worth another
// attempt: refused, reset, aborted, unreachable, EOF (peer went away, e.g.
// mid-handshake) or a timeout. Host key mismatch, authentication failures and
// protocol errors are not.
func retryable(err error) bool {
	if errors.Is(err, ErrHostKeyMismatch) {
		return false
	}
	for _, target := range []error{
		syscall.ECONNREFUSED,
		syscall.ECONNRESET,
		syscall.ECONNABORTED,
		syscall.EPIPE,
		syscall.EHOSTUNREACH,
		syscall.ENETUNREACH,
		syscall.ETIMEDOUT,
		io.EOF,
		io.ErrUnexpectedEOF,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
