package writedeadline

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKeep(t *testing.T) {
	at := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		armed time.Time
		want  bool
	}{
		{"none armed", time.Time{}, false},
		{"armed earlier than asked", at.Add(-time.Nanosecond), false},
		{"armed as asked", at, true},
		{"armed within the slack", at.Add(time.Second), true},
		{"armed at the slack's end", at.Add(2 * time.Second), true},
		{"armed past the slack", at.Add(2*time.Second + time.Nanosecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keep(tc.armed, at, 2*time.Second); got != tc.want {
				t.Fatalf("keep(%v, %v, 2s) = %v, want %v", tc.armed, at, got, tc.want)
			}
		})
	}
}

func TestListenWithoutSlackIsTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := Listen(ln, SlackDivisor-1); got != ln {
		t.Fatalf("Listen(ln, %d) = %T, want ln itself", SlackDivisor-1, got)
	}
}

// server serves h on loopback through listen(ln, slack), with net/http's
// WriteTimeout, and hands back each accepted conn.
type server struct {
	url   string
	mu    sync.Mutex
	conns []*conn
}

func serve(t *testing.T, writeTimeout, slack time.Duration, h http.HandlerFunc) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{url: "http://" + ln.Addr().String()}
	srv := &http.Server{
		Handler:      h,
		WriteTimeout: writeTimeout,
		IdleTimeout:  time.Minute,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.mu.Lock()
				s.conns = append(s.conns, c.(*conn))
				s.mu.Unlock()
			}
		},
	}
	go func() { _ = srv.Serve(listen(ln, slack)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *server) conn(t *testing.T) *conn {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) != 1 {
		t.Fatalf("%d connections accepted, want 1", len(s.conns))
	}
	return s.conns[0]
}

func get(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return string(b)
}

// TestRequestsShareOneTimer: the point of the package. Without it each
// request arms a timer and clears it: 2 per request.
func TestRequestsShareOneTimer(t *testing.T) {
	s := serve(t, time.Minute, 10*time.Second, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	const requests = 50
	for range requests {
		if got := get(t, client, s.url); got != "ok" {
			t.Fatalf("body %q, want ok", got)
		}
	}
	if n := s.conn(t).arms.Load(); n > 3 {
		t.Fatalf("%d timers armed or cleared for %d requests on one connection, want at most 3", n, requests)
	}
}

// TestWriteTimeoutStillCuts: a client that stops reading is cut off no
// earlier than WriteTimeout after its request, and not much later. Its
// request follows another on the connection within the slack, so it
// usually reuses that one's armed deadline (logged when it did not).
func TestWriteTimeoutStillCuts(t *testing.T) {
	const timeout, slack = 300 * time.Millisecond, 200 * time.Millisecond
	writeErr := make(chan time.Time, 1)
	s := serve(t, timeout, slack, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/flood" {
			return
		}
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				writeErr <- time.Now()
				return
			}
		}
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	before := s.conn(t).arms.Load()

	sent := time.Now()
	if _, err := io.WriteString(conn, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Nothing more is read: the socket's buffers fill and the handler's
	// writes block until the deadline.
	select {
	case at := <-writeErr:
		if took := at.Sub(sent); took < timeout || took > timeout+slack+2*time.Second {
			t.Fatalf("the stalled write failed %v after the request, want between %v and %v", took, timeout, timeout+slack+2*time.Second)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client that stopped reading was never cut off")
	}
	if after := s.conn(t).arms.Load(); after != before {
		t.Logf("the second request armed its own deadline (%d → %d timers): it came later than the slack", before, after)
	}
}

// TestClearIsAppliedBeforeWriting: a handler that clears its write deadline
// (a long export) may write after the armed one has passed.
func TestClearIsAppliedBeforeWriting(t *testing.T) {
	const timeout, slack = 100 * time.Millisecond, 50 * time.Millisecond
	body := strings.Repeat("x", 4<<20) // larger than the socket's buffers
	s := serve(t, timeout, slack, func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
			t.Errorf("clearing the write deadline: %v", err)
		}
		time.Sleep(3 * timeout)
		if _, err := io.WriteString(w, body); err != nil {
			t.Errorf("writing after a cleared deadline: %v", err)
		}
	})
	client := &http.Client{}
	defer client.CloseIdleConnections()
	if got := get(t, client, s.url); len(got) != len(body) {
		t.Fatalf("%d bytes received, want %d", len(got), len(body))
	}
}

// TestIdleConnectionOutlivesItsDeadline: the deadline left armed between
// requests may fire while the connection is idle; the next request on it
// still gets its whole response.
func TestIdleConnectionOutlivesItsDeadline(t *testing.T) {
	const timeout, slack = 100 * time.Millisecond, 50 * time.Millisecond
	body := strings.Repeat("y", 4<<20)
	s := serve(t, timeout, slack, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	})
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i := range 2 {
		if got := get(t, client, s.url); len(got) != len(body) {
			t.Fatalf("request %d: %d bytes received, want %d", i, len(got), len(body))
		}
		time.Sleep(3 * (timeout + slack))
	}
	s.conn(t) // both requests used one connection
}

// TestHijackedConnectionHasNoDeadline: net/http clears both deadlines when
// a handler hijacks the connection (SetDeadline), and they stay cleared.
func TestHijackedConnectionHasNoDeadline(t *testing.T) {
	const timeout, slack = 100 * time.Millisecond, 50 * time.Millisecond
	s := serve(t, timeout, slack, func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		time.Sleep(3 * (timeout + slack))
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
		if err := brw.Flush(); err != nil {
			t.Errorf("writing to the hijacked connection: %v", err)
		}
	})
	client := &http.Client{}
	defer client.CloseIdleConnections()
	if got := get(t, client, s.url); got != "hi" {
		t.Fatalf("body %q, want hi", got)
	}
}
