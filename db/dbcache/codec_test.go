package dbcache

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
)

func roundTrip[T any](t *testing.T, c *cache.Codec[T], v T) T {
	t.Helper()
	b := c.Encode(nil, v)
	d := cache.NewDecoder(b)
	got := c.Decode(d)
	if err := d.Err(); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip of %T:\n got %#v\nwant %#v", v, got, v)
	}
	for n := 0; n < len(b); n++ {
		d := cache.NewDecoder(b[:n])
		c.Decode(d)
		if d.Err() == nil {
			t.Fatalf("%T decoded from %d of %d bytes without error", v, n, len(b))
		}
	}
	return got
}

func TestGeneratedCodecsRoundTrip(t *testing.T) {
	used := time.Date(2026, 11, 26, 23, 1, 2, 345678000, time.FixedZone("", 3600))
	utc := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	local := time.Unix(1_790_000_000, 123).Local()
	t.Run("pointer set and nil", func(t *testing.T) {
		roundTrip(t, &codecEmail, db.Email{ID: uuid.New(), CampaignID: uuid.New(), Recipient: "r@x.io", OpenedAt: &used, CreatedAt: utc})
		roundTrip(t, &codecEmail, db.Email{ID: uuid.New()})
	})
	t.Run("struct with times", func(t *testing.T) {
		roundTrip(t, &codecCampaign, db.Campaign{ID: uuid.New(), UserID: uuid.New(), Name: "Ünïcode ✓", Status: "active", CreatedAt: utc, UpdatedAt: local})
		roundTrip(t, &codecUser, db.User{ID: uuid.New(), Email: "a@b.c", Name: "", IsActive: true, CreatedAt: local, UpdatedAt: utc})
	})
	t.Run("slices nil, empty, full", func(t *testing.T) {
		roundTrip(t, &codecGetCampaignDailyCountsRowSlice, nil)
		roundTrip(t, &codecGetCampaignDailyCountsRowSlice, []db.GetCampaignDailyCountsRow{})
		roundTrip(t, &codecGetCampaignDailyCountsRowSlice, []db.GetCampaignDailyCountsRow{{Day: utc, Count: 3}, {Day: utc.AddDate(0, 0, 1), Count: -1 << 62}})
	})
	t.Run("integers", func(t *testing.T) {
		roundTrip(t, &codecGetCampaignSummaryRow, db.GetCampaignSummaryRow{Total: 1<<63 - 1, Opened: 0, Replied: -5})
		roundTrip(t, &codecGetUserStatisticsRow, db.GetUserStatisticsRow{Campaigns: 1, Emails: 2, Opened: 3, Replied: 4})
	})
}

func TestGeneratedCloneSharesNothing(t *testing.T) {
	used := time.Now()
	orig := db.Email{OpenedAt: &used}
	c := codecEmail.Clone(orig)
	*c.OpenedAt = c.OpenedAt.Add(time.Hour)
	if !orig.OpenedAt.Equal(used) {
		t.Fatal("clone shares the pointer")
	}
	days := []db.GetCampaignDailyCountsRow{{Count: 1}}
	cd := codecGetCampaignDailyCountsRowSlice.Clone(days)
	cd[0].Count = 2
	if days[0].Count != 1 {
		t.Fatal("clone shares the slice")
	}
	if codecGetCampaignSummaryRow.Clone != nil {
		t.Fatal("a type without pointers got a clone function")
	}
}

func TestKeysAreCanonical(t *testing.T) {
	id, user := uuid.New(), uuid.New()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	a := keyGetCampaignDailyCounts(nil, db.GetCampaignDailyCountsParams{CampaignID: id, Since: at, Until: at.Add(time.Hour)})
	b := keyGetCampaignDailyCounts(nil, db.GetCampaignDailyCountsParams{CampaignID: id, Since: at.In(time.FixedZone("", -7200)), Until: at.Add(time.Hour).Local()})
	if string(a) != string(b) {
		t.Fatal("the same instants in other zones gave another key")
	}
	c := keyGetCampaignDailyCounts(nil, db.GetCampaignDailyCountsParams{CampaignID: id, Since: at, Until: at.Add(time.Hour + time.Nanosecond)})
	if string(a) == string(c) {
		t.Fatal("different arguments gave the same key")
	}
	s1 := keyGetCampaignSummary(nil, db.GetCampaignSummaryParams{CampaignID: id, UserID: user})
	s2 := keyGetCampaignSummary(nil, db.GetCampaignSummaryParams{CampaignID: user, UserID: id})
	if string(s1) == string(s2) {
		t.Fatal("swapped arguments gave the same key")
	}
	h1 := keyGetAPIKeyByHash(nil, []byte("ab"))
	h2 := keyGetAPIKeyByHash(nil, []byte("a"))
	if string(h1) == string(h2) || len(keyGetAPIKeyByHash(nil, nil)) == len(keyGetAPIKeyByHash(nil, []byte{})) && string(keyGetAPIKeyByHash(nil, nil)) == string(keyGetAPIKeyByHash(nil, []byte{})) {
		t.Fatal("byte keys are ambiguous")
	}
}
