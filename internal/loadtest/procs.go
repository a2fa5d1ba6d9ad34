package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a child process serving HTTP on loopback: an app instance or
// the bare reference. It runs as a separate process so that its memory can
// be read from /proc and its CPU is not shared with the load generator's
// garbage collector.
type server struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port on 127.0.0.1
	done chan struct{}
	err  error
}

// startServer runs exe args with env (added to this process's environment,
// overriding it) and waits for the child's first stdout line: the address
// it listens on. Its stderr (the access log) goes to logPath. The child
// gets SIGTERM if this process dies, so nothing outlives a crashed run.
func startServer(ctx context.Context, name, exe string, args []string, env map[string]string, logPath string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = mergeEnv(os.Environ(), env)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr, ok := <-lines:
		if !ok || addr == "" {
			<-s.done
			return nil, fmt.Errorf("%s exited before listening (%v): %s", name, s.err, fileTail(logPath))
		}
		s.addr = addr
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not listen within 60s: %s", name, fileTail(logPath))
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	return s, nil
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// stop asks the child to shut down gracefully and waits, killing it after
// 20 s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// rss is the child's resident set size now, from /proc/<pid>/status.
func (s *server) rss() (int64, error) {
	return procStatusKB(s.cmd.Process.Pid, "VmRSS:")
}

func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s of process %d: %w", field, pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rssSampler records the highest RSS of a server while load runs.
type rssSampler struct {
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleRSS(s *server, every time.Duration) *rssSampler {
	r := &rssSampler{stop: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v, err := s.rss(); err == nil {
				r.mu.Lock()
				r.peak = max(r.peak, v)
				r.mu.Unlock()
			}
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// Peak stops sampling and returns the highest RSS seen.
func (r *rssSampler) Peak() int64 {
	close(r.stop)
	r.wg.Wait()
	return r.peak
}

// waitHealthy polls url until it answers 200 or the timeout passes.
func waitHealthy(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within %s: %w", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mergeEnv returns base with the variables of over set (replacing any
// value base had).
func mergeEnv(base []string, over map[string]string) []string {
	out := make([]string, 0, len(base)+len(over))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := over[k]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range over {
		out = append(out, k+"="+v)
	}
	return out
}

func fileTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tail(b)
}
