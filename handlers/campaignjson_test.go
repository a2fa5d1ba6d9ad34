package handlers

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

// TestCampaignAppendJSON: the hand-written encoding is the reflective
// encoder's, byte for byte, or declines.
func TestCampaignAppendJSON(t *testing.T) {
	at := time.Date(2026, 12, 5, 7, 8, 9, 123456789, time.UTC)
	cases := []struct {
		name     string
		v        campaignJSON
		declines bool
	}{
		{name: "plain", v: campaignJSON{Name: "Launch", Status: db.CampaignStatusActive}},
		{name: "html and quotes", v: campaignJSON{Name: `<b>"Spring" & \sale\</b>`, Status: db.CampaignStatusDraft}},
		{name: "controls", v: campaignJSON{Name: "a\x00b\x1fc\td\ne\rf\x7f", Status: db.CampaignStatusPaused}},
		{name: "unicode", v: campaignJSON{Name: "été 😀 日本", Status: db.CampaignStatusCompleted}},
		{name: "whole seconds", v: campaignJSON{Name: "x", CreatedAt: at.Truncate(time.Second)}},
		{name: "other zone", v: campaignJSON{Name: "x", CreatedAt: at.In(time.FixedZone("", 5*3600+1800))}},
		{name: "line separator", v: campaignJSON{Name: "a\u2028b"}, declines: true},
		{name: "invalid UTF-8", v: campaignJSON{Name: "a\xffb"}, declines: true},
		{name: "year 10000", v: campaignJSON{Name: "x", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, declines: true},
		{name: "stats", v: campaignJSON{Name: "x", Stats: &summaryJSON{}}, declines: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.ID = uuid.MustParse("0189a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
			if tc.v.CreatedAt.IsZero() {
				tc.v.CreatedAt = at
			}
			tc.v.UpdatedAt = at.Add(time.Hour)
			checkCampaignJSON(t, tc.v, tc.declines)
		})
	}
}

func checkCampaignJSON(t *testing.T, v campaignJSON, declines bool) {
	t.Helper()
	got, ok := v.appendJSON(nil)
	if ok == declines {
		t.Fatalf("appendJSON ok = %v for %+v", ok, v)
	}
	if !ok {
		return
	}
	var want bytes.Buffer
	if err := jsonEncode(&want, v); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("appendJSON\n  %q\nthe encoder\n  %q", got, want.Bytes())
	}
}

// FuzzCampaignAppendJSON: whatever the name, status and times, appendJSON
// writes the encoder's bytes or declines.
func FuzzCampaignAppendJSON(f *testing.F) {
	f.Add([]byte{1, 2, 3}, "Launch", "active", int64(1_700_000_000_123_456_789), int64(0))
	f.Add([]byte{}, "<a href=\"x\">&</a>\u2028", "draft", int64(-62135596800_000_000_0), int64(1))
	f.Fuzz(func(t *testing.T, id []byte, name, status string, created, updated int64) {
		var v campaignJSON
		copy(v.ID[:], id)
		v.Name, v.Status = name, db.CampaignStatus(status)
		v.CreatedAt, v.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		got, ok := v.appendJSON(nil)
		if !ok {
			return
		}
		var want bytes.Buffer
		if err := jsonEncode(&want, v); err != nil {
			t.Fatalf("appendJSON wrote %q where the encoder fails: %v", got, err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendJSON\n  %q\nthe encoder\n  %q", got, want.Bytes())
		}
	})
}
