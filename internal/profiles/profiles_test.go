package profiles

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The handler serves the named and the runtime profiles under its prefix,
// and turns mutex sampling on only while a mutex?seconds=N request runs.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler("/debug/pprof"))
	defer srv.Close()
	get := func(path string) (int, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "heap") {
		t.Fatalf("index: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/cmdline"); code != http.StatusOK || body == "" {
		t.Fatalf("cmdline: %d %q", code, body)
	}
	if code, _ := get("/debug/pprof/heap"); code != http.StatusOK {
		t.Fatalf("heap: %d", code)
	}

	runtime.SetMutexProfileFraction(0)
	done := make(chan int)
	go func() {
		code, _ := get("/debug/pprof/mutex?seconds=1")
		done <- code
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.SetMutexProfileFraction(-1) != mutexFraction {
		if time.Now().After(deadline) {
			t.Fatal("mutex sampling not turned on while a mutex?seconds profile runs")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := <-done; code != http.StatusOK {
		t.Fatalf("mutex?seconds=1: %d", code)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 0 {
		t.Fatalf("mutex sampling left on (%d) after the profile", got)
	}
}
