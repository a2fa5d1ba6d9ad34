package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

// stdEncode is what jsonEncode replaced: encoding/json without HTML
// escaping. Responses must not change with the encoder.
func stdEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func encodeBoth(t testing.TB, v any) (got, want []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := jsonEncode(&buf, v); err != nil {
		t.Fatalf("jsonEncode(%#v): %v", v, err)
	}
	var std bytes.Buffer
	if err := stdEncode(&std, v); err != nil {
		t.Fatalf("encoding/json(%#v): %v", v, err)
	}
	return buf.Bytes(), std.Bytes()
}

// TestJSONEncodeMatchesEncodingJSON holds every response shape to
// encoding/json's bytes, with the values where encoders differ: escapes,
// invalid UTF-8, U+2028, float formatting, zones, nil pointers and slices.
func TestJSONEncodeMatchesEncodingJSON(t *testing.T) {
	tricky := "<b>&amp;</b> \"quoted\" \\ tab\t nl\n nul\x00 bell\a del\x7f é 日本 😀 \u2028\u2029 bad\xff\xfeutf8"
	at := time.Date(2026, 11, 30, 23, 59, 59, 123456789, time.FixedZone("x", 5*3600+1800))
	body := tricky
	limit := int32(120)
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"user", userJSON{ID: uuid.New(), Email: "a+b@example.com", Name: tricky, IsActive: true, CreatedAt: at}},
		{"campaign", toCampaign(db.Campaign{ID: uuid.New(), Name: tricky, Status: db.CampaignStatusActive, CreatedAt: at, UpdatedAt: at})},
		{"campaign with stats", campaignJSON{ID: uuid.New(), Name: "x", Status: db.CampaignStatusDraft, Stats: &summaryJSON{Total: 3, Opened: 1, Replied: 2, OpenRate: 1.0 / 3, ReplyRate: 2.0 / 3}}},
		{"email, nil times", emailJSON{ID: uuid.New(), CampaignID: uuid.New(), Recipient: "r@example.com", Subject: tricky, Status: "queued", CreatedAt: at}},
		{"email, all set", emailJSON{ID: uuid.New(), Body: &body, Status: "sent", SentAt: &at, IsOpened: true, OpenedAt: &at, IsReplied: true, RepliedAt: &at}},
		{"page of emails", []emailJSON{{Subject: "a"}, {Subject: "b"}}},
		{"empty page", []campaignJSON{}},
		{"nil page", []campaignJSON(nil)},
		{"api key", apiKeyJSON{ID: uuid.New(), Name: tricky, Prefix: "rr_", Key: "rr_secret", CreatedAt: at, RateLimitPerMinute: &limit}},
		{"summaries", []summaryJSON{
			newSummary(counts{}), newSummary(counts{total: 3, opened: 1, replied: 2}), newSummary(counts{7, 7, 0, 7, 2, 1}),
			{OpenRate: 1e-7, ReplyRate: 1e21}, {OpenRate: 1e20, ReplyRate: 123456789.125}, {OpenRate: 5e-324, ReplyRate: math.MaxFloat64},
			{OpenRate: -0.0, ReplyRate: 0.000001}, {Total: math.MaxInt64, Opened: math.MinInt64},
		}},
		{"days", []dayCountJSON{{Day: "2026-11-30", Count: 4}}},
		{"statistics", statisticsJSON{Campaigns: 1, Emails: 2, Opened: 3, Replied: 4}},
		{"problem", newProblem(422, "validation", "Validation failed", tricky)},
		{"map", map[string]any{"z": 1, "a": []any{nil, true, 1.5, "s"}, "m": map[string]int{"b": 2, "a": 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := encodeBoth(t, tc.v)
			if !bytes.Equal(got, want) {
				t.Errorf("jsonEncode differs from encoding/json:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// FuzzJSONEncodeMatchesEncodingJSON feeds arbitrary strings and floats, the
// two kinds of value whose encoding is not fixed by their type, through a
// response shape that carries both.
func FuzzJSONEncodeMatchesEncodingJSON(f *testing.F) {
	f.Add("plain", 0.5)
	f.Add("<>&\u2028\xff", 1e21)
	f.Add("\x00\x1f\"\\", 1e-7)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return // neither encoder accepts them; rates are never either
		}
		v := campaignJSON{Name: s, Status: db.CampaignStatus(s), Stats: &summaryJSON{OpenRate: x, ReplyRate: -x}}
		got, want := encodeBoth(t, v)
		if !bytes.Equal(got, want) {
			t.Fatalf("jsonEncode differs from encoding/json:\n got %q\nwant %q", got, want)
		}
	})
}

// BenchmarkEncodeCampaign is one campaign response body, with jsonEncode
// and with encoding/json:
//
//	go test ./handlers -run '^$' -bench EncodeCampaign -benchmem
func BenchmarkEncodeCampaign(b *testing.B) {
	v := toCampaign(db.Campaign{ID: uuid.New(), Name: "Black Friday follow-up", Status: db.CampaignStatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	var buf bytes.Buffer
	for _, tc := range []struct {
		name string
		enc  func() error
	}{
		{"jsonEncode", func() error { return jsonEncode(&buf, v) }},
		{"encoding-json", func() error { return stdEncode(&buf, v) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				buf.Reset()
				if err := tc.enc(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
