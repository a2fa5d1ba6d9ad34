package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/partitions"
	"github.com/replyrocket/replyrocket/internal/pglocal"
	"github.com/replyrocket/replyrocket/internal/seed"
)

// ScaleOptions shape the scale benchmark: the emails table is grown to
// each size in turn (12 months, 10 campaigns of 10 000 emails per user),
// and after each step the reads are timed from outside against an app
// instance with the cache off.
type ScaleOptions struct {
	Exe    string
	Sizes  []int64 // total emails after each step, ascending
	Reps   int     // sequential requests per read
	Getenv func(string) string
	Log    io.Writer
}

// scaleStep is what one size measured.
type scaleStep struct {
	size                          int64
	seed                          time.Duration
	dbBytes, tableBytes, idxBytes int64
	partitions                    int
	largestPartition              int64
	p50                           map[string]time.Duration
	retain                        string
}

// Scale reads, in the order printed.
const (
	readGetEmail = "GetEmail (by id)"
	readList     = "ListCampaigns (first page)"
	readDeep     = "a page of 100 emails, 40 pages deep"
	readSummary  = "summary of a 10 000-email campaign"
	writeBulk    = "bulk insert of 10 000 emails (POST)"
)

var scaleReads = []string{readGetEmail, readList, readDeep, readSummary, writeBulk}

// RunScale runs the scale benchmark and prints its table to out.
func RunScale(ctx context.Context, o ScaleOptions, out io.Writer) error {
	dir, err := mkTemp()
	if err != nil {
		return err
	}
	defer removeAll(dir)
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "scale: "+format+"\n", args...) }
	// fsync off, as in the test harness: the figures are the database's
	// work, not this machine's disk.
	cluster, url, err := startDatabase(ctx, pglocal.Options{DataDir: filepath.Join(dir, "pg"),
		Settings: map[string]string{"max_wal_size": "4GB"}})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := db.NewStore(pool, 30*time.Second)

	var (
		steps   []scaleStep
		have    int64
		app     *server
		key     string
		targets scaleTargets
	)
	defer func() {
		if app != nil {
			app.stop()
		}
	}()
	for i, size := range o.Sizes {
		st := scaleStep{size: size, p50: map[string]time.Duration{}}
		users := int((size - have) / 100_000)
		if users < 1 {
			return fmt.Errorf("scale sizes must grow by at least 100 000 emails, got %d after %d", size, have)
		}
		logf("seeding %d emails (%d users × 10 campaigns × 10 000) to reach %d", int64(users)*100_000, users, size)
		start := time.Now()
		res, err := seed.Run(ctx, store, pool, seed.Options{Users: users, CampaignsPerUser: 10, EmailsPerCampaign: 10_000, Months: 12, Workers: 2})
		if err != nil {
			return err
		}
		st.seed = time.Since(start)
		have += res.Emails
		if app == nil {
			key = res.Users[0].Key
			if targets, err = pickScaleTargets(ctx, pool, res.Users[0].User.ID); err != nil {
				return err
			}
			env := map[string]string{"APP_ENV": "prod", "DATABASE_URL": url, "CACHE_DISABLED": "true", "RATE_LIMIT_DISABLED": "true"}
			if app, err = startServer(ctx, "app (CACHE_DISABLED)", o.Exe, ChildArgs(RoleApp), env, filepath.Join(dir, "app.log")); err != nil {
				return err
			}
			if err := waitHealthy(ctx, app.url("/health/db"), 30*time.Second); err != nil {
				return err
			}
		}
		if err := sizes(ctx, pool, &st); err != nil {
			return err
		}
		logf("timing reads at %d emails", have)
		if err := timeReads(ctx, app, key, targets, o.Reps, &st); err != nil {
			return err
		}
		if i == len(o.Sizes)-1 {
			logf("partitions retain --older-than 6 at %d emails", have)
			start := time.Now()
			// The app runs with CACHE_DISABLED: no cache to invalidate.
			retired, err := partitions.Retain(ctx, pool, nil, time.Now(), 6, false)
			if err != nil {
				return fmt.Errorf("retain: %w", err)
			}
			var rows int64
			for _, r := range retired {
				rows += r.Rows
			}
			st.retain = fmt.Sprintf("%s: %d partitions detached, %d rows (counted exactly)", time.Since(start).Round(time.Millisecond), len(retired), rows)
		}
		steps = append(steps, st)
	}
	printScale(out, steps)
	return nil
}

// scaleTargets are the first user's: its campaigns of 10 000 emails and a
// sample of their email ids.
type scaleTargets struct {
	campaign uuid.UUID // read: keeps its 10 000 emails
	bulkInto uuid.UUID // written: grows by 30 000 a step
	emails   []uuid.UUID
}

func pickScaleTargets(ctx context.Context, pool *pgxpool.Pool, user uuid.UUID) (scaleTargets, error) {
	var t scaleTargets
	rows, err := pool.Query(ctx, "SELECT id FROM campaigns WHERE user_id = $1 ORDER BY created_at, id LIMIT 2", user)
	if err != nil {
		return t, fmt.Errorf("pick campaigns: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) < 2 {
		return t, fmt.Errorf("pick campaigns: %d found, %v", len(ids), err)
	}
	t.campaign, t.bulkInto = ids[0], ids[1]
	rows, err = pool.Query(ctx, `SELECT e.id FROM emails e JOIN campaigns c ON c.id = e.campaign_id
		WHERE c.user_id = $1 ORDER BY random() LIMIT 5000`, user)
	if err != nil {
		return t, fmt.Errorf("pick emails: %w", err)
	}
	if t.emails, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
		return t, fmt.Errorf("pick emails: %w", err)
	}
	if len(t.emails) == 0 {
		return t, fmt.Errorf("the first user has no emails")
	}
	return t, nil
}

func sizes(ctx context.Context, pool *pgxpool.Pool, st *scaleStep) error {
	err := pool.QueryRow(ctx, `
		SELECT pg_database_size(current_database()),
		       coalesce(sum(pg_relation_size(i.inhrelid)), 0)::bigint,
		       coalesce(sum(pg_indexes_size(i.inhrelid)), 0)::bigint,
		       count(*)::int,
		       coalesce(max(pg_total_relation_size(i.inhrelid)), 0)::bigint
		FROM pg_inherits i WHERE i.inhparent = 'emails'::regclass`).
		Scan(&st.dbBytes, &st.tableBytes, &st.idxBytes, &st.partitions, &st.largestPartition)
	if err != nil {
		return fmt.Errorf("read sizes: %w", err)
	}
	return nil
}

// timeReads times each read reps times in a row, one request at a time.
func timeReads(ctx context.Context, s *server, key string, t scaleTargets, reps int, st *scaleStep) error {
	c := &http.Client{Timeout: 60 * time.Second}
	camp := "/api/v1/campaigns/" + t.campaign.String()
	deep, err := cursorAt(ctx, c, s, key, camp+"/emails?limit=100", 39)
	if err != nil {
		return err
	}
	reads := map[string]func(i int) (string, string, []byte){
		readGetEmail: func(i int) (string, string, []byte) {
			return "GET", "/api/v1/emails/" + t.emails[i%len(t.emails)].String(), nil
		},
		readList:    func(int) (string, string, []byte) { return "GET", "/api/v1/campaigns?limit=20", nil },
		readDeep:    func(int) (string, string, []byte) { return "GET", camp + "/emails?limit=100&cursor=" + deep, nil },
		readSummary: func(int) (string, string, []byte) { return "GET", camp + "/summary", nil },
	}
	for _, name := range scaleReads[:4] {
		lat := make([]time.Duration, 0, reps)
		for i := range reps {
			m, path, _ := reads[name](i)
			d, _, err := timed(ctx, c, m, s.url(path), key, nil, http.StatusOK)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			lat = append(lat, d)
		}
		slices.Sort(lat)
		st.p50[name] = quantile(lat, 0.5)
	}
	body, err := bulkBody(10_000)
	if err != nil {
		return err
	}
	var lat []time.Duration
	for range 3 {
		d, _, err := timed(ctx, c, "POST", s.url("/api/v1/campaigns/"+t.bulkInto.String()+"/emails"), key, body, http.StatusCreated)
		if err != nil {
			return fmt.Errorf("%s: %w", writeBulk, err)
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	st.p50[writeBulk] = quantile(lat, 0.5)
	return nil
}

// cursorAt follows next_cursor pages times from path and returns the
// cursor of the page after them.
func cursorAt(ctx context.Context, c *http.Client, s *server, key, path string, pages int) (string, error) {
	cur := ""
	for range pages {
		u := path
		if cur != "" {
			u += "&cursor=" + cur
		}
		_, b, err := timed(ctx, c, "GET", s.url(u), key, nil, http.StatusOK)
		if err != nil {
			return "", fmt.Errorf("walk pages: %w", err)
		}
		var page struct {
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return "", fmt.Errorf("walk pages: %w", err)
		}
		if page.NextCursor == nil {
			return "", fmt.Errorf("walk pages: the campaign ended before page %d", pages+1)
		}
		cur = *page.NextCursor
	}
	return cur, nil
}

func timed(ctx context.Context, c *http.Client, method, url, key string, body []byte, want int) (time.Duration, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != want {
		return 0, nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, tail(b))
	}
	return d, b, nil
}

func printScale(out io.Writer, steps []scaleStep) {
	fmt.Fprintf(out, "\nReplyRocket scale benchmark: p50 of one request at a time, cache off (CACHE_DISABLED=true), APP_ENV=prod\n\n")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := "\t"
	for _, s := range steps {
		head += humanCount(s.size) + " emails\t"
	}
	fmt.Fprintln(tw, head)
	line := func(label string, f func(scaleStep) string) {
		l := label + "\t"
		for _, s := range steps {
			l += f(s) + "\t"
		}
		fmt.Fprintln(tw, l)
	}
	line("seed time (this step)", func(s scaleStep) string { return s.seed.Round(100 * time.Millisecond).String() })
	line("database size", func(s scaleStep) string { return mib(s.dbBytes) })
	line("emails: tables", func(s scaleStep) string { return mib(s.tableBytes) })
	line("emails: indexes", func(s scaleStep) string { return mib(s.idxBytes) })
	line("partitions / largest", func(s scaleStep) string { return strconv.Itoa(s.partitions) + " / " + mib(s.largestPartition) })
	for _, r := range scaleReads {
		line(r+" (ms)", func(s scaleStep) string { return ms(s.p50[r]) })
	}
	_ = tw.Flush()
	for _, s := range steps {
		if s.retain != "" {
			fmt.Fprintf(out, "\npartitions retain --older-than 6 at %s emails: %s\n", humanCount(s.size), s.retain)
		}
	}
}

func humanCount(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.FormatInt(n/1000, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}
