package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/replyrocket/replyrocket/internal/pglocal"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// buildBinary compiles the command once per test into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "replyrocket")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type devRun struct {
	cmd    *exec.Cmd
	banner []string
	done   chan error
}

// startDev runs `replyrocket dev` in dir and waits for its banner.
func startDev(t *testing.T, bin, dir string, args ...string) *devRun {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "PORT=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuilder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &devRun{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		r.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
	})
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before its banner; stderr:\n%s", stderr)
			}
			r.banner = append(r.banner, l)
			if strings.HasPrefix(l, "Ctrl-C") {
				go func() {
					for range lines {
					}
				}()
				return r
			}
		case <-timeout:
			t.Fatalf("no banner within 3 minutes; stderr:\n%s", stderr)
		}
	}
}

// cleanEnv is the test's environment minus what would point dev at another
// database or change its output.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DATABASE_URL", "APP_ENV", "PORT", "ADMIN_API_KEY", "REDIS_URL":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// lockedBuilder collects the child's stderr, written by exec's copying
// goroutine and read by the test.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	keyRE  = regexp.MustCompile(`^Demo API key: (rr_[A-Za-z0-9_-]+)$`)
	monRE  = regexp.MustCompile(`^Database monitor: (http://\S+/db-monitor/)#key=(rr_[A-Za-z0-9_-]+)$`)
	curlRE = regexp.MustCompile(`^\s+curl -s -H 'Authorization: Bearer (rr_[A-Za-z0-9_-]+)' '?(http://[^' ]+)'?$`)
)

func (r *devRun) parse(t *testing.T) (key string, curls [][2]string) {
	t.Helper()
	for _, l := range r.banner {
		if m := keyRE.FindStringSubmatch(l); m != nil {
			key = m[1]
		}
		if m := curlRE.FindStringSubmatch(l); m != nil {
			curls = append(curls, [2]string{m[1], m[2]})
		}
	}
	if key == "" || len(curls) != 3 {
		t.Fatalf("banner without a key and three curl commands:\n%s", strings.Join(r.banner, "\n"))
	}
	return key, curls
}

// runCurl runs a printed command the way a reader would paste it: through
// the shell with curl when installed, else the same request from Go.
func runCurl(t *testing.T, key, url string) (int, string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("curl", "-s", "-w", "\n%{http_code}", "-H", "Authorization: Bearer "+key, url).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", url, err)
		}
		i := strings.LastIndex(string(out), "\n")
		code, err := strconv.Atoi(string(out[i+1:]))
		if err != nil {
			t.Fatalf("curl %s: no status in %q", url, out)
		}
		return code, string(out[:i])
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// adminKey returns the dashboard URL and admin key of the banner.
func (r *devRun) adminKey(t *testing.T) (dashboard, key string) {
	t.Helper()
	for _, l := range r.banner {
		if m := monRE.FindStringSubmatch(l); m != nil {
			return m[1], m[2]
		}
	}
	t.Fatalf("banner without the dashboard URL and admin key:\n%s", strings.Join(r.banner, "\n"))
	return "", ""
}

func (r *devRun) interrupt(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("dev did not exit cleanly after SIGINT: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("dev did not stop within 45s of SIGINT")
	}
}

// devSetup builds the binary and makes an empty working directory for
// dev, which needs the local PostgreSQL binaries (strict mode fails
// without them, otherwise the test skips).
func devSetup(t *testing.T) (bin, work string) {
	t.Helper()
	if _, err := pglocal.BinDir(); err != nil {
		if pgtest.Strict() {
			t.Fatalf("dev needs local PostgreSQL binaries (REPLYROCKET_TEST_STRICT=1): %v", err)
		}
		t.Skipf("no local PostgreSQL binaries: %v", err)
	}
	dir := t.TempDir()
	bin = buildBinary(t, dir)
	work = filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, work
}

func TestDevServesTheDemoAndStopsCleanly(t *testing.T) {
	bin, work := devSetup(t)

	first := startDev(t, bin, work)
	key, curls := first.parse(t)
	for _, c := range curls {
		code, body := runCurl(t, c[0], c[1])
		if code != 200 || !strings.HasPrefix(strings.TrimSpace(body), "{") {
			t.Fatalf("%s answered %d: %s", c[1], code, body)
		}
	}
	_, summary := runCurl(t, key, curls[2][1])
	if !strings.Contains(summary, `"total":2000`) {
		t.Fatalf("demo campaign summary: %s", summary)
	}
	// The admin key dev minted opens the monitor out of the box.
	dashboard, admin := first.adminKey(t)
	if code, body := runCurl(t, admin, dashboard+"performance"); code != 200 || !strings.Contains(body, `"checks"`) {
		t.Fatalf("monitor with the printed admin key answered %d: %.300s", code, body)
	}
	if code, body := runCurl(t, "", dashboard); code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("dashboard page answered %d: %.300s", code, body)
	}
	first.interrupt(t)
	if _, err := os.Stat(filepath.Join(work, ".data", "postgres", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("PostgreSQL still running after dev stopped (postmaster.pid: %v)", err)
	}

	// A second run reuses the data and the key.
	second := startDev(t, bin, work)
	key2, curls2 := second.parse(t)
	if key2 != key || !strings.Contains(strings.Join(second.banner, "\n"), "reusing") {
		t.Fatalf("second run did not reuse the data:\n%s", strings.Join(second.banner, "\n"))
	}
	if code, body := runCurl(t, key2, curls2[0][1]); code != 200 {
		t.Fatalf("second run: %d %s", code, body)
	}
	if _, admin2 := second.adminKey(t); admin2 != admin {
		t.Fatalf("second run minted a new admin key: %s, was %s", admin2, admin)
	}
	second.interrupt(t)
}

// TestDevWithReplicas: `dev --replicas 1` starts a streaming replica beside
// the embedded primary and wires it: /health/db shows it in rotation and the
// demo reads work; Ctrl-C stops both servers.
func TestDevWithReplicas(t *testing.T) {
	bin, work := devSetup(t)
	run := startDev(t, bin, work, "--replicas", "1")
	key, curls := run.parse(t)
	for _, c := range curls {
		if code, body := runCurl(t, c[0], c[1]); code != 200 {
			t.Fatalf("%s answered %d: %s", c[1], code, body)
		}
	}
	health := strings.Replace(curls[0][1], "/api/v1/me", "/health/db", 1)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := runCurl(t, key, health)
		if strings.Contains(body, `"name":"replica-1","state":"in_rotation"`) && strings.Contains(body, `"status":"ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health/db never showed the replica in rotation: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	run.interrupt(t)
	for _, d := range []string{"postgres", "replica-1"} {
		if _, err := os.Stat(filepath.Join(work, ".data", d, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still running after dev stopped (postmaster.pid: %v)", d, err)
		}
	}
}
