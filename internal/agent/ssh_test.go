package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/sshx"
	"github.com/xdrive-io/xdrive/test/sshd"
)

// TestSSH runs the agent's commands against a real sshd whose ForceCommand
// plays xdrive-ctl. test/instancesim's test runs them against the real one.
func TestSSH(t *testing.T) {
	clientKey, clientPub := sshd.GenerateKey(t)
	dir := t.TempDir()
	released := filepath.Join(dir, "released")
	notified := filepath.Join(dir, "notified")
	script := filepath.Join(dir, "xdrive-ctl.sh")
	writeScript(t, script, `#!/bin/sh
case $SSH_ORIGINAL_COMMAND in
`+sshd.ShellQuote(agent.StatusCommand)+`)
	if [ -e `+released+` ]; then echo '{"phase":"released","released":true}'; else echo '{"phase":"ready","mounted":true}'; fi ;;
`+sshd.ShellQuote(agent.ReleaseCommand)+`) touch `+released+`; echo spot-notice ;;
`+sshd.ShellQuote(bootstrap.CtlPath)+`" notify "*) echo "$SSH_ORIGINAL_COMMAND" >`+notified+` ;;
*) echo "unexpected command: $SSH_ORIGINAL_COMMAND" >&2; exit 126 ;;
esac
`)
	srv := sshd.Start(t, sshd.Options{AuthorizedKeys: []string{clientPub}, ForceCommand: script})
	if srv.User != sshx.DefaultUser {
		t.Skipf("the agent logs in as %s; this test runs as %s", sshx.DefaultUser, srv.User)
	}
	ssh := agent.SSH{Resolver: func(context.Context, string) (string, error) { return srv.Addr, nil }}
	target := agent.Target{Address: "10.0.0.1", HostKey: srv.HostKey, ClientKey: clientKey}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	st, err := ssh.Status(ctx, target)
	if err != nil || st.Phase != "ready" || !st.Mounted {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if st, err := ssh.Release(ctx, target); err != nil || !st.Released || !st.SpotNotice {
		t.Fatalf("Release = %+v, %v", st, err)
	}
	if st, err := ssh.Status(ctx, target); err != nil || !st.Released {
		t.Fatalf("Status after Release = %+v, %v", st, err)
	}
	if err := ssh.Notify(ctx, target); err == nil {
		t.Fatal("Notify without a notice succeeded")
	}
	deadline := time.Date(2026, 11, 30, 10, 30, 0, 0, time.UTC)
	notice := target
	notice.Notice = &bootstrap.Notice{Kind: bootstrap.NoticeKindIdleStop, Deadline: deadline}
	if err := ssh.Notify(ctx, notice); err != nil {
		t.Fatalf("Notify = %v", err)
	}
	if b, err := os.ReadFile(notified); err != nil || string(b) != bootstrap.CtlPath+" notify --kind idle-stop --deadline 2026-11-30T10:30:00Z\n" {
		t.Fatalf("the instance ran %q (%v)", b, err)
	}

	// Another host key is refused before any command runs.
	_, target.HostKey = sshd.GenerateKey(t)
	if _, err := ssh.Status(ctx, target); !errors.Is(err, sshx.ErrHostKeyMismatch) {
		t.Fatalf("Status with the wrong host key: %v", err)
	}
}

func writeScript(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}
