package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// local runs a redis-server binary on a loopback port.
type local struct {
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func lookRedisServer() (string, error) {
	if bin, err := exec.LookPath("redis-server"); err == nil {
		return bin, nil
	}
	// Debian installs it in /usr/bin, which minimal PATHs may lack.
	for _, bin := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	return "", errors.New("redis-server not found in PATH")
}

func startLocal(ctx context.Context, bin, dir string) (*local, error) {
	// A port picked this way may be taken before redis binds it; retry with
	// another rather than fail the test.
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		l := &local{bin: bin, dir: dir, port: port}
		if err = l.start(ctx); err == nil {
			return l, nil
		}
	}
	return nil, err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (l *local) name() string { return "local redis-server" }
func (l *local) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port)) }

func (l *local) start(ctx context.Context) error {
	// No persistence: a restart must come back empty like the container does,
	// and tests must not leave files behind.
	cmd := exec.Command(l.bin,
		"--port", strconv.Itoa(l.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", l.dir,
		"--daemonize", "no",
		"--logfile", "",
	)
	cmd.SysProcAttr = procAttr()
	// Kept only to explain a failed start; read after Wait, so no race.
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", l.bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	l.cmd, l.out, l.done = cmd, out, done

	err := waitReady(ctx, l.addr(), done)
	if err == nil {
		return nil
	}
	if errors.Is(err, errExited) {
		l.cmd = nil
	} else {
		_ = l.stop(ctx)
	}
	return fmt.Errorf("redis-server on port %d: %w\n%s", l.port, err, out.Bytes())
}

func (l *local) stop(ctx context.Context) error {
	if l.cmd == nil {
		return nil
	}
	defer func() { l.cmd = nil }()
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal redis-server: %w", err)
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	// A server that ignores SIGTERM must still not outlive the test.
	_ = l.cmd.Process.Kill()
	<-l.done
	return nil
}

func (l *local) close(ctx context.Context) error { return l.stop(ctx) }
