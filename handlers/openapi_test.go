package handlers

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
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
