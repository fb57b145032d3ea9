// Package sshx runs commands on xdrive instances over SSH; agent.SSH, the
// operator's one way to reach an instance, is built on it.
//
// Every connection pins the instance's host key (which the operator generated
// and handed to the instance), connection-level failures are retried with
// jittered exponential backoff until a deadline, and nothing else is retried.
package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Resolver maps an instance address (as Run receives it) to the host:port
// that is actually dialed.
type Resolver func(ctx context.Context, instanceAddr string) (dialAddr string, err error)

// DefaultResolver dials instanceAddr on port 22, or as-is if it already
// carries a port.
func DefaultResolver(_ context.Context, instanceAddr string) (string, error) {
	if _, _, err := net.SplitHostPort(instanceAddr); err == nil {
		return instanceAddr, nil
	}
	return net.JoinHostPort(instanceAddr, "22"), nil
}

// Defaults applied by New to zero Config/RetryPolicy fields.
const (
	DefaultUser           = "root"
	DefaultDialTimeout    = 15 * time.Second
	DefaultCommandTimeout = 10 * time.Minute
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultMaxElapsed     = 2 * time.Minute
)

// Config configures a Client. Zero values get the defaults above.
type Config struct {
	// Signer authenticates the client. If nil, PrivateKeyPEM is parsed.
	Signer ssh.Signer
	// PrivateKeyPEM is the client's private key (e.g. from GenerateKey).
	PrivateKeyPEM []byte
	// User to log in as; default "root".
	User string
	// HostKey is the instance's pinned public host key in authorized_keys
	// format ("ssh-ed25519 AAAA..."). Required: there is no way to disable
	// host key checking.
	HostKey string
	// Resolver maps the instance address to the dialed host:port; default
	// DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds one attempt's TCP connect, SSH handshake and
	// authentication.
	DialTimeout time.Duration
	// CommandTimeout bounds the command once it has started.
	CommandTimeout time.Duration
	Retry          RetryPolicy
}

// RetryPolicy controls retries of connection-level failures. The wait before
// attempt n+1 is drawn from [b/2, b] where b = InitialBackoff*2^(n-1), capped
// at MaxBackoff. Retrying stops at the earlier of ctx's deadline and
// MaxElapsed after Run was called.
type RetryPolicy struct {
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	MaxElapsed     time.Duration
}

// Client runs commands over SSH against instances whose host key is
// Config.HostKey. It holds no connections (each Run dials afresh), so it is
// cheap to create one per instance, and safe for concurrent use.
type Client struct {
	user           string
	signer         ssh.Signer
	hostKey        ssh.PublicKey
	hostKeyAlgos   []string
	resolve        Resolver
	dialTimeout    time.Duration
	commandTimeout time.Duration
	retry          RetryPolicy
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	c := &Client{
		user:           cfg.User,
		signer:         cfg.Signer,
		resolve:        cfg.Resolver,
		dialTimeout:    cfg.DialTimeout,
		commandTimeout: cfg.CommandTimeout,
		retry:          cfg.Retry,
	}
	if c.signer == nil {
		if len(cfg.PrivateKeyPEM) == 0 {
			return nil, errors.New("sshx: Config needs Signer or PrivateKeyPEM")
		}
		s, err := ssh.ParsePrivateKey(cfg.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("sshx: parse client private key: %w", err)
		}
		c.signer = s
	}
	if cfg.HostKey == "" {
		return nil, errors.New("sshx: Config.HostKey (pinned host key) is required")
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
	if err != nil {
		return nil, fmt.Errorf("sshx: parse pinned host key: %w", err)
	}
	c.hostKey = hk
	c.hostKeyAlgos = []string{hk.Type()}
	if hk.Type() == ssh.KeyAlgoRSA {
		c.hostKeyAlgos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	if c.user == "" {
		c.user = DefaultUser
	}
	if c.resolve == nil {
		c.resolve = DefaultResolver
	}
	if c.dialTimeout <= 0 {
		c.dialTimeout = DefaultDialTimeout
	}
	if c.commandTimeout <= 0 {
		c.commandTimeout = DefaultCommandTimeout
	}
	if c.retry.InitialBackoff <= 0 {
		c.retry.InitialBackoff = DefaultInitialBackoff
	}
	if c.retry.MaxBackoff <= 0 {
		c.retry.MaxBackoff = DefaultMaxBackoff
	}
	if c.retry.MaxElapsed <= 0 {
		c.retry.MaxElapsed = DefaultMaxElapsed
	}
	return c, nil
}

// Run connects to the instance at addr, runs command and returns its stdout.
//
// Connection-level failures up to the point the command is started (refused,
// reset, EOF during the handshake, timeouts) are retried with backoff; when
// retrying runs out of time the error is a *RetryError wrapping the last
// failure. A host key mismatch (ErrHostKeyMismatch), an authentication
// failure or a non-zero exit (*ExitError, returned together with whatever
// stdout was produced) is returned at once. A connection lost after the
// command started is not retried either, since the command may have run.
// If ctx ends, Run returns promptly with an error wrapping ctx.Err().
func (c *Client) Run(ctx context.Context, addr, command string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.retry.MaxElapsed)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	backoff := c.retry.InitialBackoff
	var last error // last retryable failure
	for attempt := 1; ; attempt++ {
		client, sess, err := c.open(ctx, addr, deadline)
		if err == nil {
			return c.exec(ctx, client, sess, addr, command)
		}
		if retryable(err) {
			last = err
		}
		if ctx.Err() != nil {
			return nil, ctxDone(ctx, addr, attempt, last)
		}
		if !retryable(err) {
			return nil, err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if time.Until(deadline) < wait {
			return nil, &RetryError{Addr: addr, Attempts: attempt, Err: err}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctxDone(ctx, addr, attempt, last)
		case <-t.C:
		}
		backoff = min(2*backoff, c.retry.MaxBackoff)
	}
}

func ctxDone(ctx context.Context, addr string, attempts int, last error) error {
	if last == nil {
		return fmt.Errorf("sshx: %s: %w", addr, ctx.Err())
	}
	return &RetryError{Addr: addr, Attempts: attempts, Err: last, ctxErr: ctx.Err()}
}

// open dials, handshakes, authenticates and opens a session. Nothing has run
// on the instance yet when it fails, so its retryable errors are safe to retry.
func (c *Client) open(ctx context.Context, addr string, deadline time.Time) (*ssh.Client, *ssh.Session, error) {
	target, err := c.resolve(ctx, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("sshx: resolve %s: %w", addr, err)
	}
	attemptDeadline := time.Now().Add(c.dialTimeout)
	if deadline.Before(attemptDeadline) {
		attemptDeadline = deadline
	}
	dialCtx, cancel := context.WithDeadline(ctx, attemptDeadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dialCtx, "tcp", target)
	if err != nil {
		return nil, nil, fmt.Errorf("sshx: dial %s (instance %s): %w", target, addr, err)
	}

	// The handshake has no ctx: bound it with a deadline, and close the
	// connection if ctx ends meanwhile.
	if err := conn.SetDeadline(attemptDeadline); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("sshx: %s: %w", target, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var mismatch atomic.Pointer[error]
	cfg := &ssh.ClientConfig{
		User:              c.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(c.signer)},
		HostKeyAlgorithms: c.hostKeyAlgos,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), c.hostKey.Marshal()) {
				return nil
			}
			err := fmt.Errorf("%w: %s (instance %s) presented %s %s, pinned %s %s",
				ErrHostKeyMismatch, target, addr,
				key.Type(), ssh.FingerprintSHA256(key),
				c.hostKey.Type(), ssh.FingerprintSHA256(c.hostKey))
			mismatch.Store(&err)
			return err
		},
	}
	sconn, chans, reqs, err := ssh.NewClientConn(conn, target, cfg)
	if p := mismatch.Load(); p != nil {
		if err == nil {
			sconn.Close()
		}
		return nil, nil, *p
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sshx: ssh to %s (instance %s): %w", target, addr, err)
	}
	client := ssh.NewClient(sconn, chans, reqs)
	sess, err := client.NewSession()
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("sshx: open session on %s (instance %s): %w", target, addr, err)
	}
	if !stop() { // ctx ended; conn is being closed
		client.Close()
		return nil, nil, ctx.Err()
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("sshx: %s: %w", target, err)
	}
	return client, sess, nil
}

// exec runs command on sess and closes client. Its errors are never retried.
func (c *Client) exec(ctx context.Context, client *ssh.Client, sess *ssh.Session, addr, command string) ([]byte, error) {
	defer client.Close()
	cmdCtx, cancel := context.WithTimeout(ctx, c.commandTimeout)
	defer cancel()
	stop := context.AfterFunc(cmdCtx, func() { client.Close() })

	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	err := sess.Run(command)
	if !stop() && err != nil { // we closed the connection
		if ctx.Err() != nil {
			return stdout.Bytes(), fmt.Errorf("sshx: %q on %s: %w", command, addr, ctx.Err())
		}
		return stdout.Bytes(), fmt.Errorf("sshx: %q on %s timed out after %s: %w",
			command, addr, c.commandTimeout, context.DeadlineExceeded)
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case errors.As(err, &ee):
		return stdout.Bytes(), &ExitError{
			Addr:       addr,
			Command:    command,
			ExitStatus: exitStatus(ee),
			Signal:     ee.Signal(),
			Stderr:     stderr.Bytes(),
		}
	default:
		return stdout.Bytes(), fmt.Errorf("sshx: %q on %s (not retried, it may have run): %w", command, addr, err)
	}
}

func exitStatus(ee *ssh.ExitError) int {
	if ee.Signal() != "" {
		return -1
	}
	return ee.ExitStatus()
}
