package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a pgbouncer in transaction pooling mode in front of a test
// database.
type PgBouncer struct {
	// URL reaches the database through pgbouncer.
	URL     string
	LogPath string
}

func lookPgBouncer() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("no pgbouncer binary (Debian: apt-get install pgbouncer)")
}

// StartPgBouncer runs pgbouncer (pool_mode = transaction, the mode that
// keeps no prepared statement between transactions) in front of the
// database at dbURL, and stops it when the test ends. Without the binary
// the test skips, or fails under REPLYROCKET_TEST_STRICT=1.
func StartPgBouncer(t testing.TB, dbURL string) *PgBouncer {
	t.Helper()
	bin, err := lookPgBouncer()
	if err != nil {
		if Strict() {
			t.Fatalf("pgtest: %v (REPLYROCKET_TEST_STRICT=1)", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", dbURL, err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	pass, _ := u.User.Password()
	userName := u.User.Username()
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	server := fmt.Sprintf("host=%s port=%s dbname=%s user=%s", u.Hostname(), u.Port(), dbName, userName)
	if pass != "" {
		server += " password=" + pass
	}
	ini := fmt.Sprintf(`[databases]
%s = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = 10
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, dbName, server, port, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	files := map[string]string{
		"pgbouncer.ini": ini,
		"users.txt":     fmt.Sprintf("%q %q\n", userName, pass),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.Dir = dir
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT, Setpgid: true}
	if os.Geteuid() == 0 {
		// pgbouncer refuses to run as root.
		cred, err := postgresUser()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		attr.Credential = cred
		if err := chownTree(dir, cred); err != nil {
			t.Fatal(err)
		}
	}
	cmd.SysProcAttr = attr
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("pgtest: start pgbouncer: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	b := &PgBouncer{
		URL:     fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", url.UserPassword(userName, pass).String(), port, dbName),
		LogPath: filepath.Join(dir, "pgbouncer.log"),
	}
	if pass == "" {
		b.URL = fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", url.User(userName).String(), port, dbName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, b.URL)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
			if err == nil {
				return b
			}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			t.Fatalf("pgtest: pgbouncer exited: %s", log)
		case <-ctx.Done():
			t.Fatalf("pgtest: pgbouncer did not answer within 20s: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres system user to run pgbouncer as: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chownTree(dir string, cred *syscall.Credential) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
}
