package handlers

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

// TestPagingIsStableUnderConcurrentInserts walks every page of a 1 000-email
// campaign while other emails are being inserted into it, and checks that
// each email that existed when the walk began is seen exactly once.
func TestPagingIsStableUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, key := e.user()
	c := e.campaign(key, 0)
	ctx := context.Background()

	// Spread over the last two months, so the walk crosses partitions.
	now := time.Now()
	var rows []db.InsertEmailsParams
	for i := range 1000 {
		at := now.Add(-time.Duration(i) * 90 * time.Minute)
		rows = append(rows, db.EmailRows(c.ID, []db.NewEmail{{Recipient: "a@b.co", Subject: "s", Body: "b"}}, at)...)
	}
	if _, err := e.store.InsertEmails(ctx, rows); err != nil {
		t.Fatal(err)
	}
	existing := make(map[uuid.UUID]bool, len(rows))
	for _, r := range rows {
		existing[r.ID] = true
	}

	// Writers insert both behind the walk (old timestamps) and ahead of it
	// (new ones) until it ends.
	stop := make(chan struct{})
	var inserted atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				at := now.Add(-time.Duration((i*37+w*11)%1500) * time.Hour / 12)
				extra := db.EmailRows(c.ID, []db.NewEmail{{Recipient: "new@b.co", Subject: "s", Body: "b"}}, at)
				if _, err := e.store.InsertEmails(ctx, extra); err != nil {
					t.Error(err)
					return
				}
				inserted.Add(1)
			}
		}()
	}

	seen := map[uuid.UUID]int{}
	var prev *emailJSON
	next, pages := "", 0
	for {
		path := "/api/v1/campaigns/" + c.ID.String() + "/emails?limit=37"
		if next != "" {
			path += "&cursor=" + url.QueryEscape(next)
		}
		var p page[emailJSON]
		e.do("GET", path, key, nil).want(200).json(&p)
		pages++
		for i := range p.Items {
			it := p.Items[i]
			seen[it.ID]++
			if prev != nil && (it.CreatedAt.Before(prev.CreatedAt) || (it.CreatedAt.Equal(prev.CreatedAt) && it.ID.String() <= prev.ID.String())) {
				t.Fatalf("page %d goes backwards: %v after %v", pages, it.ID, prev.ID)
			}
			prev = &it
		}
		if p.NextCursor == nil {
			break
		}
		next = *p.NextCursor
	}
	close(stop)
	wg.Wait()

	for id := range existing {
		if seen[id] != 1 {
			t.Fatalf("email %s seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("email %s (inserted during the walk) seen %d times", id, n)
		}
	}
	if inserted.Load() == 0 {
		t.Fatal("no concurrent inserts happened during the walk; the test proved nothing")
	}
	t.Logf("walked %d pages (%d emails seen) while %d emails were inserted; user %s", pages, len(seen), inserted.Load(), u.ID)
}
