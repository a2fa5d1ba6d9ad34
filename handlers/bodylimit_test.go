package handlers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawExchange writes a whole request (headers and body) to a fresh TCP
// connection before reading a byte, as urllib does, then reads the answer.
func rawExchange(t *testing.T, addr string, head string, body []byte, chunked bool) (*http.Response, []byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	w := bufio.NewWriterSize(conn, 64<<10)
	if _, err := io.WriteString(w, head); err != nil {
		return nil, nil, fmt.Errorf("write head: %w", err)
	}
	if chunked {
		for b := body; len(b) > 0; {
			n := min(len(b), 32<<10)
			fmt.Fprintf(w, "%x\r\n", n)
			w.Write(b[:n])
			io.WriteString(w, "\r\n")
			b = b[n:]
		}
		io.WriteString(w, "0\r\n\r\n")
	} else {
		w.Write(body)
	}
	if err := w.Flush(); err != nil {
		return nil, nil, fmt.Errorf("write body: %w", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

// A body over the limit, written whole before the client reads, still
// reaches the client as a 413 problem, with a Content-Length or chunked,
// on the default 1 MiB routes and on the 16 MiB bulk route.
func TestOversizedBodySentWholeGets413(t *testing.T) {
	e := newEnv(t)
	_, key := e.user()
	c := e.campaign(key, 0)
	srv := httptest.NewServer(e.e)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	jsonOf := func(size int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"name":"x","emails":[`)
		for b.Len() < size {
			b.WriteString(`{"recipient":"a@example.com","subject":"s","body":"` + strings.Repeat("x", 1000) + `"},`)
		}
		b.WriteString(`{"recipient":"a@example.com","subject":"s","body":"b"}]}`)
		return b.Bytes()
	}
	tests := []struct {
		name    string
		path    string
		size    int
		chunked bool
	}{
		{"2 MiB with Content-Length", "/api/v1/campaigns", 2 << 20, false},
		{"2 MiB chunked", "/api/v1/campaigns", 2 << 20, true},
		{"17 MiB bulk with Content-Length", "/api/v1/campaigns/" + c.ID.String() + "/emails", 17 << 20, false},
		{"17 MiB bulk chunked", "/api/v1/campaigns/" + c.ID.String() + "/emails", 17 << 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := jsonOf(tc.size)
			if strings.HasSuffix(tc.path, "/emails") {
				body = bytes.Replace(body, []byte(`"name":"x",`), nil, 1)
			}
			head := "POST " + tc.path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\nContent-Type: application/json\r\n"
			if tc.chunked {
				head += "Transfer-Encoding: chunked\r\n\r\n"
			} else {
				head += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
			}
			res, b, err := rawExchange(t, addr, head, body, tc.chunked)
			if err != nil {
				t.Fatalf("the client never read an answer: %v", err)
			}
			if res.StatusCode != http.StatusRequestEntityTooLarge || res.Header.Get("Content-Type") != ProblemContentType {
				t.Fatalf("status %d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), b)
			}
			var p Problem
			if err := json.Unmarshal(b, &p); err != nil || p.Status != 413 {
				t.Fatalf("problem %s: %v", b, err)
			}
		})
	}
}

// A client that asks "Expect: 100-continue" for a body over the limit gets
// the 413 without sending it: the body is never asked for.
func TestOversizedBodyWithExpectContinueIsRefusedUnsent(t *testing.T) {
	e := newEnv(t)
	_, key := e.user()
	srv := httptest.NewServer(e.e)
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /api/v1/campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", key, 8<<20)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413 before the body", res.StatusCode)
	}
}
