package handlers

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbcache"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/monitor"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/querystats"
)

// chromiumPath finds the browser, or skips (fails when strict).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if pgtest.Strict() {
		t.Fatal("no chromium on PATH and REPLYROCKET_TEST_STRICT=1")
	}
	t.Skip("no chromium on PATH")
	return ""
}

// TestDashboardInBrowser loads /db-monitor/ in headless Chromium against
// the real router and database: no console errors, tables filled, and
// both charts drawn.
func TestDashboardInBrowser(t *testing.T) {
	browser := chromiumPath(t)
	ctx := context.Background()

	// The pool carries the latency tracer, as cmd/replyrocket wires it.
	tracer := querystats.New()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := db.NewStore(pool, 2*time.Second)
	if _, err := store.EnsureEmailPartitions(ctx, db.EnsureEmailPartitionsParams{FromMonth: time.Now().AddDate(0, -2, 0), Months: 3}); err != nil {
		t.Fatal(err)
	}
	// Reads go through the query cache, whose hit rate the first chart
	// plots.
	qc, err := dbcache.NewCache(cache.Config{Namespace: "dash"}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = qc.Close() })
	cached, err := dbcache.New(store, qc)
	if err != nil {
		t.Fatal(err)
	}
	m := monitor.New(pool, monitor.Config{SnapshotInterval: time.Hour}, monitor.Sources{Tracer: tracer, Cache: qc})
	t.Cleanup(m.Close)
	router := New(Deps{
		Store: cached, Pool: pool, AdminKey: testAdminKey, RequestTimeout: 10 * time.Second,
		Log:     slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		Monitor: m, Cache: qc,
	})
	e := &env{t: t, e: router, pool: pool, store: cached}
	_, key := e.user()
	c := e.campaign(key, 300)
	for i := 0; i < 3; i++ {
		e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/summary", key, nil).want(200)
		e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails?limit=50", key, nil).want(200)
		// Backends publish their I/O counters when idle, at most once a
		// second unless told to flush; the chart needs them between
		// snapshots.
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, "SELECT count(*) FROM emails")
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT pg_stat_force_next_flush()")
		}
		conn.Release()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if err := m.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}

	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want loopback", srv.URL)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.UserDataDir(browserProfileDir(t)),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 2000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 60*time.Second)
	defer cancelTimeout()

	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeWarning || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Error())
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError || ev.Entry.Level == cdplog.LevelWarning {
				problems = append(problems, fmt.Sprintf("log %s: %s (%s)", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})

	var checks, appQueries, slow, tables, parts int
	var statusText string
	var hitPNG, bufferPNG, poolPNG, pagePNG []byte
	count := func(sel string, n *int) chromedp.Action {
		return chromedp.Evaluate(fmt.Sprintf("document.querySelectorAll(%q).length", sel), n)
	}
	err = chromedp.Run(bctx,
		cdplog.Enable(),
		runtime.Enable(),
		chromedp.Navigate(srv.URL+"/db-monitor/"),
		chromedp.WaitVisible("#key", chromedp.ByID),
		chromedp.SendKeys("#key", testAdminKey, chromedp.ByID),
		chromedp.Click(`#keyform button[type="submit"]`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("browser: open the page and enter the key: %v", err)
	}
	// The page says "Updated …" (class ok) once every section loaded, or
	// shows the error (class error).
	var statusClass string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := chromedp.Run(bctx, chromedp.Evaluate(`document.getElementById("status").className`, &statusClass),
			chromedp.Text("#status", &statusText, chromedp.ByID)); err != nil {
			t.Fatalf("browser: read status: %v", err)
		}
		if statusClass == "ok" {
			break
		}
	}
	if statusClass != "ok" {
		mu.Lock()
		t.Fatalf("dashboard status %q (%s); console: %v", statusText, statusClass, problems)
	}
	err = chromedp.Run(bctx,
		count("#checks tbody tr", &checks),
		count("#appq tbody tr", &appQueries),
		count("#slow tbody tr", &slow),
		count("#tables tbody tr", &tables),
		count("#parts tbody tr", &parts),
		chromedp.Screenshot("#hitchart", &hitPNG, chromedp.ByID),
		chromedp.Screenshot("#bufferchart", &bufferPNG, chromedp.ByID),
		chromedp.Screenshot("#poolchart", &poolPNG, chromedp.ByID),
		chromedp.FullScreenshot(&pagePNG, 100),
	)
	if err != nil {
		t.Fatalf("browser: %v (status %q)", err, statusText)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if dir := os.Getenv("DASHBOARD_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "dashboard.png")
	}
	if err := os.WriteFile(shot, pagePNG, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("status %q; screenshot %s", statusText, shot)

	mu.Lock()
	if len(problems) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(problems, "\n"))
	}
	mu.Unlock()
	if checks < 10 || appQueries < 3 || slow < 1 || tables < 3 || parts < 4 {
		t.Errorf("rows: checks %d, app queries %d, slow %d, tables %d, partitions %d", checks, appQueries, slow, tables, parts)
	}
	for name, b := range map[string][]byte{"query cache hit chart": hitPNG, "buffer cache hit chart": bufferPNG, "pool chart": poolPNG} {
		if n := coloredPixels(t, b); n < 100 {
			t.Errorf("%s: %d coloured pixels, want a drawn series", name, n)
		}
	}
}

// coloredPixels counts clearly coloured (non-grey) pixels: the grid, text
// and background are grey or white, the series are coloured.
func coloredPixels(t *testing.T, b []byte) int {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			if isColored(img, x, y) {
				n++
			}
		}
	}
	return n
}

func isColored(img image.Image, x, y int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	hi := max(r, g, b) >> 8
	lo := min(r, g, b) >> 8
	return hi-lo > 60
}

// browserProfileDir is a fresh Chromium profile. t.TempDir would fail the
// test when Chromium's helper processes, which outlive the browser by a
// moment, are still writing into it at cleanup; this removes it with a few
// bounded retries instead.
func browserProfileDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dashboard-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 20 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("leaving Chromium profile %s behind: %v", dir, err)
	})
	return dir
}
