package handlers

import (
	"encoding/hex"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// writeCampaign answers one campaign, written by appendJSON: the campaign
// by id is the API's most frequent read, and the reflective encoder
// boxed its UUID to call MarshalText (two allocations) and took the DTO
// as an interface (one more), three of a cached read's allocations and
// most of its encoding time. A campaign appendJSON cannot write the way
// the encoder would goes through writeJSON (TestCampaignAppendJSON
// compares the two byte for byte).
func writeCampaign(c echo.Context, code int, v campaignJSON) error {
	bp := jsonBufs.Get().(*[]byte)
	defer putJSONBuf(bp)
	b, ok := v.appendJSON((*bp)[:0])
	if !ok {
		return writeJSON(c, code, v)
	}
	*bp = b
	res := c.Response()
	if h := res.Header(); headerValue(h, echo.HeaderContentType) == "" {
		h[echo.HeaderContentType] = jsonContentType
	}
	res.Status = code
	_, err := res.Write(b)
	return err
}

// jsonBufs hold the bodies appendJSON writes: a buffer passed to a
// ResponseWriter escapes, so one on the stack would be an allocation.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func putJSONBuf(bp *[]byte) {
	if cap(*bp) > 4096 {
		return // a rare large body is not kept
	}
	jsonBufs.Put(bp)
}

// appendJSON appends the campaign as jsonEncode writes it (its fields in
// order, no HTML escaping, a final newline); ok is false when it cannot
// promise the same bytes: stats present, a string the encoders escape
// differently (U+2028 and U+2029, which segmentio escapes; invalid UTF-8),
// or a time outside what time.Time's MarshalJSON accepts.
func (v *campaignJSON) appendJSON(b []byte) ([]byte, bool) {
	if v.Stats != nil || !plainJSONString(v.Name) || !plainJSONString(string(v.Status)) ||
		!jsonTime(v.CreatedAt) || !jsonTime(v.UpdatedAt) {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendUUID(b, v.ID)
	b = append(b, `,"name":`...)
	b, _ = jsontext.AppendQuote(b, v.Name) // valid UTF-8: checked above
	b = append(b, `,"status":`...)
	b, _ = jsontext.AppendQuote(b, string(v.Status))
	b = append(b, `,"created_at":"`...)
	b = v.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updated_at":"`...)
	b = v.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...), true
}

// appendUUID appends id quoted, in its canonical form, with no
// allocation (uuid.UUID's MarshalText makes a slice).
func appendUUID(b []byte, id uuid.UUID) []byte {
	var s [36]byte
	formatUUID(&s, id)
	b = append(b, '"')
	b = append(b, s[:]...)
	return append(b, '"')
}

// formatUUID writes u in the canonical 8-4-4-4-12 hex form.
func formatUUID(t *[36]byte, u [16]byte) {
	hex.Encode(t[0:8], u[0:4])
	hex.Encode(t[9:13], u[4:6])
	hex.Encode(t[14:18], u[6:8])
	hex.Encode(t[19:23], u[8:10])
	hex.Encode(t[24:36], u[10:16])
	t[8], t[13], t[18], t[23] = '-', '-', '-', '-'
}

// plainJSONString reports whether both encoders write s alike: valid
// UTF-8 without U+2028 and U+2029.
func plainJSONString(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsAny(s, "\u2028\u2029")
}

// jsonTime reports whether t is within the years time.Time's MarshalJSON
// writes (it fails outside them).
func jsonTime(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}
