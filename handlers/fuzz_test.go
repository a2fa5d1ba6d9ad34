package handlers

import (
	"net/http"
	"strings"
	"testing"
)

// The fuzz targets send arbitrary bodies to the two routes that take the
// richest input and require that none yields a 5xx: every bad body must be
// turned away as a client error, never reach the database as something it
// rejects with an unclassified error.
//
//	go test ./handlers -run '^$' -fuzz FuzzCreateCampaign -fuzztime 8000x
//	go test ./handlers -run '^$' -fuzz FuzzBulkEmails -fuzztime 8000x

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		`{"name":"Launch"}`,
		`{"name":"Launch","status":"active","emails":[{"recipient":"a@b.co","subject":"Hi","body":"Hello"}]}`,
		`{"emails":[{"recipient":"a@b.co","subject":"Hi","body":"Hello"}]}`,
		`{"emails":[{"recipient":"x","subject":"","body":""}]}`,
		`{"name":"a\u0000b"}`,
		`{"name":"\ud800"}`,
		`{"name":"` + strings.Repeat("é", 200) + `"}`,
		`{"emails":[{"recipient":"a@b.co","subject":"` + strings.Repeat("s", 999) + `","body":"x"}]}`,
		`{"name":"x","emails":null}`,
		`{"name":null,"status":null}`,
		`[]`, `null`, `"x"`, `{"name":1e400}`, `{"emails":{}}`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
}

func fuzzRoute(f *testing.F, path func(e *env, key string) string) {
	fuzzSeeds(f)
	e := newEnv(f)
	e.noSpec = true
	_, key := e.user()
	p := path(e, key)
	f.Fuzz(func(t *testing.T, body []byte) {
		e.t = t
		req := newRequest(http.MethodPost, p, key, string(body), "application/json")
		r := e.serve(req)
		if r.Code >= 500 {
			t.Fatalf("body %q: status %d: %s", body, r.Code, r.Body)
		}
		if r.Code >= 400 {
			r.problem()
		}
	})
}

func FuzzCreateCampaign(f *testing.F) {
	fuzzRoute(f, func(*env, string) string { return "/api/v1/campaigns" })
}

func FuzzBulkEmails(f *testing.F) {
	fuzzRoute(f, func(e *env, key string) string {
		return "/api/v1/campaigns/" + e.campaign(key, 0).ID.String() + "/emails"
	})
}
