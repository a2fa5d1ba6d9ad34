// Package pglocal runs a PostgreSQL cluster from the binaries installed on
// the machine: the test harness's fallback when there is neither a
// TEST_DATABASE_URL nor Docker, and the embedded database of `replyrocket dev`.
package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("no PostgreSQL binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin")

// Options describe the cluster to run.
type Options struct {
	// DataDir holds the cluster; it is initialised when empty and reused
	// otherwise.
	DataDir string
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// Settings are passed as -c name=value to the server.
	Settings map[string]string
	// Durable keeps fsync on; tests turn it off for speed.
	Durable bool
}

// Cluster is a running server.
type Cluster struct {
	DataDir string
	Port    int
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
}

// BinDir finds the directory with initdb and postgres: PATH first, then the
// newest /usr/lib/postgresql/<version>/bin.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

// binary is a server tool beside initdb, or else the one of the same
// version among the packaged binaries (a PATH may hold only initdb and
// postgres).
func binary(binDir, name string) string {
	if p := filepath.Join(binDir, name); isExecutable(p) {
		return p
	}
	if real, err := filepath.EvalSymlinks(filepath.Join(binDir, "postgres")); err == nil {
		if p := filepath.Join(filepath.Dir(real), name); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join(binDir, name)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// setUp finds the binaries and the user the server runs as, and prepares
// the data directory (Start and StartReplica alike).
func setUp(opts Options) (bin string, cred *syscall.Credential, dataDir string, err error) {
	if bin, err = BinDir(); err != nil {
		return "", nil, "", err
	}
	if cred, err = serverCredential(); err != nil {
		return "", nil, "", err
	}
	if dataDir, err = filepath.Abs(opts.DataDir); err != nil {
		return "", nil, "", fmt.Errorf("data dir %s: %w", opts.DataDir, err)
	}
	if err := prepareDataDir(dataDir, cred); err != nil {
		return "", nil, "", err
	}
	return bin, cred, dataDir, nil
}

// Start initialises DataDir when needed, starts the server and waits until
// it accepts connections. The server dies with this process.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, cred, dataDir, err := setUp(opts)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initdb(ctx, bin, dataDir, cred); err != nil {
			return nil, err
		}
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{DataDir: dataDir, Port: port, done: make(chan struct{}), logPath: filepath.Join(dataDir, "server.log")}
	if err := c.launch(bin, cred, opts); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// serverCredential is who the server runs as: PostgreSQL refuses root, so a
// root caller hands the server to the postgres system user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres system user to run the server as: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareDataDir creates the directory, gives it to the server's user, and
// makes every directory above it traversable by that user, which initdb and
// the server need.
func prepareDataDir(dir string, cred *syscall.Credential) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if cred == nil {
		return os.Chmod(dir, 0o700)
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("give %s to the postgres user: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("make %s traversable for the postgres user: %w", p, err)
			}
		}
		if p == "/" {
			return nil
		}
	}
}

func initdb(ctx context.Context, bin, dataDir string, cred *syscall.Credential) error {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", dataDir, err, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) launch(bin string, cred *syscall.Credential, opts Options) error {
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": "",
		"max_connections":         "300",
	}
	if !opts.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	args := []string{"-D", c.DataDir, "-p", strconv.Itoa(c.Port)}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	c.cmd.Dir = "/"
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary or dev server that dies must not leave an
	// orphaned server behind. SIGINT is PostgreSQL's fast shutdown.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-c.done:
			return fmt.Errorf("postgres exited during start-up (%v): %s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 60s: %v: %s", err, c.logTail())
		}
	}
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// URL is a connection URL for database name as the postgres superuser.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, name)
}

// Stop shuts the server down fast (rolling back open transactions) and
// waits for it, killing it if it takes longer than 15 s.
func (c *Cluster) Stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("postgres did not stop within 15s; killed: %s", c.logTail())
	}
}

// Done is closed when the server process has exited.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// StartReplica makes opts.DataDir a streaming replica of the server at
// 127.0.0.1:primaryPort (pg_basebackup -R: it writes standby.signal and
// primary_conninfo) unless it already holds one, then starts it like Start.
// The primary needs wal_level replica (the default), free WAL senders (10
// by default) and a pg_hba line allowing replication from 127.0.0.1 (initdb
// writes one). opts.Settings may set recovery_min_apply_delay, to make a
// replica lag on purpose.
func StartReplica(ctx context.Context, primaryPort int, opts Options) (*Cluster, error) {
	bin, cred, dataDir, err := setUp(opts)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		cmd := exec.CommandContext(ctx, binary(bin, "pg_basebackup"),
			"-h", "127.0.0.1", "-p", strconv.Itoa(primaryPort), "-U", "postgres",
			"-D", dataDir, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pg_basebackup from port %d into %s: %w\n%s", primaryPort, dataDir, err, out)
		}
	}
	opts.DataDir = dataDir
	return Start(ctx, opts)
}

// StopImmediate stops the server the way `pg_ctl stop -m immediate` does
// (SIGQUIT to the postmaster): every backend exits at once without a
// shutdown checkpoint, and clients see their connections cut mid-message.
// Tests use it to play a database that dies hard; the next Start on the same
// DataDir runs crash recovery.
func (c *Cluster) StopImmediate() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		return fmt.Errorf("signal postgres: %w", err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("postgres did not stop within 15s of SIGQUIT; killed: %s", c.logTail())
	}
}
