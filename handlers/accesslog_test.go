package handlers

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAccessLogFields: one line per request, with every field the access
// log promises, in its order, and the error of a failed request.
func TestAccessLogFields(t *testing.T) {
	e := newEnv(t)
	_, key := e.user()
	c := e.campaign(key, 0)
	cases := []struct {
		name, path, key, route string
		status                 int
		withError              bool
	}{
		{name: "ok", path: "/api/v1/campaigns/" + c.ID.String(), key: key, route: "/api/v1/campaigns/:id", status: 200},
		{name: "unauthorized", path: "/api/v1/campaigns/" + c.ID.String(), route: "/api/v1/campaigns/:id", status: 401, withError: true},
		{name: "unmatched", path: "/nowhere", key: key, route: "(unmatched)", status: 404, withError: true},
	}
	order := []string{"time", "level", "msg", "request_id", "method", "path", "route", "status", "bytes", "latency_us", "ip"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.logs.String())
			r := e.do("GET", tc.path, tc.key, nil).want(tc.status)
			var line string
			for _, l := range strings.Split(e.logs.String()[before:], "\n") {
				if strings.Contains(l, `"msg":"request"`) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no access-log line in %q", e.logs.String()[before:])
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			want := map[string]any{
				"level": "INFO", "msg": "request", "method": "GET", "path": tc.path, "route": tc.route,
				"status": float64(tc.status), "request_id": r.Header().Get("X-Request-ID"),
				"bytes": float64(len(r.Body.Bytes())),
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v in %s", k, got[k], v, line)
				}
			}
			if _, ok := got["error"]; ok != tc.withError {
				t.Errorf("error field present %v, want %v in %s", ok, tc.withError, line)
			}
			// The fields in the order the log has always written them.
			at := -1
			for _, k := range order {
				i := strings.Index(line, `"`+k+`":`)
				if i <= at {
					t.Fatalf("field %q missing or out of order in %s", k, line)
				}
				at = i
			}
		})
	}
}
