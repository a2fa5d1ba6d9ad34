package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/monitor"
)

// specValidator checks the document against the OpenAPI 3.1 schema, and
// then requests and responses against the document.
var specValidator = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := libopenapi.NewDocument(OpenAPI())
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return v, nil
})

func TestOpenAPIDocumentIsValid(t *testing.T) {
	v, err := specValidator()
	if err != nil {
		t.Fatal(err)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s", se.Reason, se.FieldPath)
			}
		}
	}
}

// checkAgainstSpec validates a request the router answered, and its
// response, against the OpenAPI document.
func checkAgainstSpec(t testing.TB, req *http.Request, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Header().Get("Content-Encoding") != "" {
		return // the validator reads bodies as sent; compression is tested apart
	}
	v, err := specValidator()
	if err != nil {
		t.Fatal(err)
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	res := rec.Result()
	// A request the API rejected is invalid on purpose: only its response
	// must match the document.
	check := v.ValidateHttpRequestResponse
	if rec.Code >= 400 {
		check = v.ValidateHttpResponse
	}
	if ok, errs := check(r, res); !ok {
		var b strings.Builder
		for _, e := range errs {
			b.WriteString("\n  " + e.Message + ": " + e.Reason)
			for _, se := range e.SchemaValidationErrors {
				b.WriteString("\n    " + se.Reason + " at " + se.FieldPath)
			}
		}
		t.Errorf("%s %s → %d does not match the OpenAPI document:%s\nbody: %.300s", req.Method, req.URL, rec.Code, b.String(), rec.Body)
	}
}

// Every JSON field of every request and response type in the route table is
// in the document, with the validation tags it carries: the document is
// reflected from the types, and this proves nothing is left behind.
func TestOpenAPIHasEveryFieldAndRule(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range docRoutes() {
		for _, v := range []any{r.body, r.out} {
			typ := reflect.TypeOf(v)
			if typ == nil || typ.Kind() != reflect.Struct || typ == reflect.TypeFor[anyJSON]() {
				continue
			}
			name := schemaName(typ, "")
			s, ok := doc.Components.Schemas[name]
			if !ok {
				t.Errorf("%s %s: no schema %s for %s", r.method, r.path, name, typ)
				continue
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				jn, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if jn == "" || jn == "-" {
					continue
				}
				p, ok := s.Properties[jn]
				if !ok {
					t.Errorf("schema %s lacks %s", name, jn)
					continue
				}
				for _, rule := range []string{"minLength", "maxLength", "minimum", "maximum", "maxItems", "minItems"} {
					if want := f.Tag.Get(rule); want != "" && fmt.Sprint(p[rule]) != want {
						t.Errorf("schema %s.%s: %s = %v, the type says %s", name, jn, rule, p[rule], want)
					}
				}
				if of := f.Tag.Get("maxItemsOf"); of != "" && fmt.Sprint(p["maxItems"]) != fmt.Sprint(itemBounds[of]) {
					t.Errorf("schema %s.%s: maxItems = %v, %s is %d", name, jn, p["maxItems"], of, itemBounds[of])
				}
				checked++
			}
		}
	}
	if checked < 40 {
		t.Fatalf("only %d fields checked: the walk is broken", checked)
	}
	// The campaign status lists exactly the schema's enum.
	var full map[string]any
	_ = json.Unmarshal(OpenAPI(), &full)
	enum := full["components"].(map[string]any)["schemas"].(map[string]any)["CampaignStatus"].(map[string]any)["enum"]
	if fmt.Sprint(enum) != fmt.Sprint(db.AllCampaignStatusValues()) {
		t.Errorf("CampaignStatus enum %v, sqlc says %v", enum, db.AllCampaignStatusValues())
	}
}

// /db-monitor redirects to the page at /db-monitor/ (OpenAPI paths take no
// trailing slash; the page's relative links need one).
func TestDashboardRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMonitor(t, monitor.Config{}, nil))
	r := e.do("GET", "/db-monitor", "", nil)
	if r.Code != 301 || r.Header().Get("Location") != "/db-monitor/" {
		t.Fatalf("GET /db-monitor → %d Location %q", r.Code, r.Header().Get("Location"))
	}
}
