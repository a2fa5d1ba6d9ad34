package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/swaggest/jsonschema-go"
	"github.com/swaggest/openapi-go"
	"github.com/swaggest/openapi-go/openapi31"

	"github.com/replyrocket/replyrocket/db"
)

// The OpenAPI 3.1 document is reflected by swaggest/openapi-go from the
// route table (routes.go) and the request and response types: what Echo
// serves and what the document says come from the same entries, and a
// field added to a type is in the document with its tags (lengths, ranges,
// formats, enums).

var errorText = map[int]string{
	400: "Invalid request: malformed JSON, unknown fields, a bad UUID or cursor, or values out of range (the errors array lists the fields).",
	401: "Missing, unknown or revoked key (WWW-Authenticate: Bearer).",
	403: "Admin routes are disabled: ADMIN_API_KEY is not set on the server.",
	404: "Not found, or not yours.",
	409: "Conflicts with an existing resource.",
	413: "Body too large.",
	422: "Idempotency-Key already used for a different request.",
	429: "Rate limited (Retry-After; RateLimit-Policy and RateLimit headers say the budget), or too many failed authentications from this address.",
	415: "The body must be application/json.",
	500: "A bug: logged with its stack; the body carries the request id.",
	503: "Database unavailable or pool exhausted (Retry-After), or the request timed out.",
	504: "The request timed out.",
}

// Errors every authenticated route can answer besides its own.
var authErrors = map[authKind][]int{
	authUser:  {401, 429, 503, 504},
	authAdmin: {401, 403, 429, 503, 504},
}

var securityName = map[authKind]string{authUser: "apiKey", authAdmin: "adminKey"}

// schemaName names a component after its Go type: userJSON → User,
// createCampaignInput → CreateCampaign, page[…campaignJSON] → CampaignPage.
func schemaName(t reflect.Type, def string) string {
	name := t.Name()
	if i := strings.Index(name, "["); i >= 0 {
		// A generic instance: page[path/to.campaignJSON].
		arg := name[i+1 : len(name)-1]
		arg = arg[strings.LastIndex(arg, ".")+1:]
		return schemaName(reflect.TypeOf(struct{}{}), arg) + upperFirst(name[:i])
	}
	if name == "" {
		name = def
	}
	// Names from the monitor's, the cache's and the rate limiter's packages
	// (Check, Snapshot, Stats) say little outside them.
	for suffix, prefix := range map[string]string{"/internal/ratelimit": "RateLimit", "/internal/monitor": "Monitor", "/internal/cache": "Cache"} {
		if strings.HasSuffix(t.PkgPath(), suffix) && !strings.HasPrefix(name, prefix) {
			name = prefix + name
		}
	}
	for _, suffix := range []string{"JSON", "Input"} {
		name = strings.TrimSuffix(name, suffix)
	}
	switch name {
	case "apiKey":
		return "APIKey"
	case "any":
		return "Any"
	}
	return upperFirst(name)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

var (
	uuidType   = reflect.TypeFor[uuid.UUID]()
	statusType = reflect.TypeFor[db.CampaignStatus]()
	anyType    = reflect.TypeFor[anyJSON]()
)

// intercept adjusts what reflection cannot know: uuid.UUID is a string
// with a format, the campaign status lists the schema's enum values as
// sqlc generated them, and objects refuse unknown properties (the strict
// decoder does) except the free-form anyJSON.
func intercept(p jsonschema.InterceptSchemaParams) (bool, error) {
	if !p.Processed {
		return false, nil
	}
	t := p.Value.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == uuidType:
		p.Schema.TypeEns().SimpleTypes = nil
		p.Schema.WithType(jsonschema.String.Type()).WithFormat("uuid")
		p.Schema.Items = nil
		p.Schema.MinItems = 0
		p.Schema.MaxItems = nil
	case t == statusType:
		// Never null in a response; a request's null status means absent.
		p.Schema.Type = nil
		p.Schema.WithType(jsonschema.String.Type())
		values := db.AllCampaignStatusValues()
		enum := make([]any, len(values))
		for i, v := range values {
			enum[i] = string(v)
		}
		p.Schema.WithEnum(enum...)
	case t.Kind() == reflect.Struct && t != anyType && p.Schema.HasType(jsonschema.Object):
		p.Schema.WithAdditionalProperties(jsonschema.SchemaOrBool{TypeBoolean: new(bool)})
	}
	return false, nil
}

// itemBounds are the array bounds that are Go constants, which a maxItems
// tag cannot name: a field tagged maxItemsOf:"Name" gets the constant's
// value as its schema's maxItems (boundItems), and the validator and the
// rate limits read the same constant.
var itemBounds = map[string]int{"MaxBulkEmails": MaxBulkEmails, "MaxBulkEvents": MaxBulkEvents}

// boundItems applies a field's maxItemsOf tag.
func boundItems(p jsonschema.InterceptPropParams) error {
	name := p.Field.Tag.Get("maxItemsOf")
	if name == "" || !p.Processed || p.PropertySchema == nil {
		return nil
	}
	n, ok := itemBounds[name]
	if !ok {
		return fmt.Errorf("field %s: maxItemsOf names %q, not a bound in itemBounds", p.Field.Name, name)
	}
	p.PropertySchema.WithMaxItems(int64(n))
	return nil
}

// requireResponseFields marks every response field without omitempty as
// required: the API always sends it. Request types say required:"true"
// themselves, since an absent request field often has a meaning.
func requireResponseFields(p jsonschema.InterceptPropParams) error {
	if !p.Processed || p.ParentSchema == nil {
		return nil
	}
	tag := p.Field.Tag.Get("json")
	if tag == "" || tag == "-" || strings.Contains(tag, "omitempty") {
		return nil
	}
	if !isResponseField(p.Field) {
		return nil
	}
	for _, r := range p.ParentSchema.Required {
		if r == p.Name {
			return nil
		}
	}
	p.ParentSchema.Required = append(p.ParentSchema.Required, p.Name)
	return nil
}

// modulePath prefixes the packages whose types the API writes: handlers'
// own, and the monitor's, the cache's and the rate limiter's figures.
const modulePath = "github.com/replyrocket/replyrocket/"

// responseFields are the fields of the types the API writes, collected
// from the route table.
var responseFields = sync.OnceValue(func() map[reflect.Type]bool {
	out := map[reflect.Type]bool{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || out[t] || !strings.HasPrefix(t.PkgPath(), modulePath) {
			return
		}
		out[t] = true
		for i := range t.NumField() {
			visit(t.Field(i).Type)
		}
	}
	for _, r := range docRoutes() {
		if r.out != nil {
			visit(reflect.TypeOf(r.out))
		}
		for _, v := range r.errorsAs {
			visit(reflect.TypeOf(v))
		}
	}
	visit(reflect.TypeFor[Problem]())
	return out
})

// isResponseField reports whether f belongs to a response type. The
// reflector does not say which struct a property came from, so the field
// is looked up among the response types' fields.
func isResponseField(f reflect.StructField) bool {
	for t := range responseFields() {
		if g, ok := t.FieldByName(f.Name); ok && g.Type == f.Type && g.Tag == f.Tag && reflect.DeepEqual(g.Index, f.Index) {
			return true
		}
	}
	return false
}

// docRoutes is the route table as the document reads it: handlers are not
// called, so their receivers need no dependencies.
func docRoutes() []route {
	return routeTable(&API{}, monitorHandlers{}, cacheHandlers{}, rateLimitHandlers{}, opsHandlers{})
}

func buildOpenAPI() ([]byte, error) {
	r := openapi31.NewReflector()
	r.JSONSchemaReflector().DefaultOptions = append(r.JSONSchemaReflector().DefaultOptions,
		jsonschema.InterceptDefName(schemaName),
		jsonschema.InterceptSchema(intercept),
		jsonschema.InterceptProp(func(p jsonschema.InterceptPropParams) error {
			if err := boundItems(p); err != nil {
				return err
			}
			return requireResponseFields(p)
		}),
	)
	s := r.SpecEns()
	s.Info.
		WithTitle("ReplyRocket API").
		WithVersion("1.0.0").
		WithDescription("Campaigns, emails and statistics. Every /api/v1 route needs Authorization: Bearer <key>. Errors are RFC 9457 application/problem+json. Every response carries X-Request-ID; authenticated ones carry RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers). POSTs under /api/v1 take an Idempotency-Key header.").
		WithLicense(openapi31.License{Name: "Proprietary", Identifier: ptr("LicenseRef-Proprietary")})
	s.WithServers(openapi31.Server{URL: "http://localhost:8080", Description: ptr("replyrocket dev")})
	s.ComponentsEns().WithSecuritySchemes(map[string]openapi31.SecuritySchemeOrReference{
		"apiKey": {SecurityScheme: &openapi31.SecurityScheme{HTTPBearer: &openapi31.SecuritySchemeHTTPBearer{Scheme: "bearer"},
			Description: ptr("A user's API key (rr_...).")}},
		"adminKey": {SecurityScheme: &openapi31.SecurityScheme{HTTPBearer: &openapi31.SecuritySchemeHTTPBearer{Scheme: "bearer"},
			Description: ptr("The server's ADMIN_API_KEY.")}},
	})
	for _, rt := range docRoutes() {
		if err := addOperation(r, rt); err != nil {
			return nil, fmt.Errorf("%s %s: %w", rt.method, rt.path, err)
		}
	}
	return markPublic(s)
}

// markPublic writes the document with `security: []` on the public
// operations, which say so explicitly (the reflector's types drop an empty
// list).
func markPublic(s *openapi31.Spec) ([]byte, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	paths, _ := doc["paths"].(map[string]any)
	for _, rt := range docRoutes() {
		if rt.auth != authNone {
			continue
		}
		item, _ := paths[rt.path].(map[string]any)
		op, _ := item[strings.ToLower(rt.method)].(map[string]any)
		if op == nil {
			return nil, fmt.Errorf("%s %s not in the document", rt.method, rt.path)
		}
		op["security"] = []any{}
	}
	return json.MarshalIndent(doc, "", "  ")
}

func addOperation(r *openapi31.Reflector, rt route) error {
	oc, err := r.NewOperationContext(rt.method, rt.path)
	if err != nil {
		return err
	}
	oc.SetSummary(rt.summary)
	oc.SetTags(rt.tag)
	oc.SetID(operationID(rt))
	if rt.params != nil {
		oc.AddReqStructure(rt.params)
	}
	if rt.body != nil {
		oc.AddReqStructure(rt.body, func(cu *openapi.ContentUnit) {
			cu.Description = rt.bodyNote
			cu.ContentType = "application/json"
		})
	}
	ok := func(cu *openapi.ContentUnit) { cu.HTTPStatus = rt.ok }
	switch {
	case rt.outType != "":
		oc.AddRespStructure(nil, ok, func(cu *openapi.ContentUnit) { cu.ContentType = rt.outType })
	case rt.out != nil:
		oc.AddRespStructure(rt.out, ok)
	default:
		oc.AddRespStructure(nil, ok)
	}
	for code, v := range rt.errorsAs {
		oc.AddRespStructure(v, func(cu *openapi.ContentUnit) {
			cu.HTTPStatus = code
			cu.Description = "The database did not answer in time; the same shape as 200, with status \"unavailable\"."
		})
	}
	codes := append([]int{}, rt.errors...)
	if rt.idempotent() {
		codes = append(codes, http.StatusUnprocessableEntity)
	}
	codes = append(codes, authErrors[rt.auth]...)
	codes = append(codes, 500)
	for _, code := range codes {
		oc.AddRespStructure(Problem{}, func(cu *openapi.ContentUnit) {
			cu.HTTPStatus = code
			cu.ContentType = ProblemContentType
			cu.Description = errorText[code]
		})
	}
	if err := r.AddOperation(oc); err != nil {
		return err
	}
	op, err := operation(r, rt)
	if err != nil {
		return err
	}
	// What the reflector does not model: who may call, and whether the body
	// may be left out.
	if name, ok := securityName[rt.auth]; ok {
		op.Security = []map[string][]string{{name: {}}}
	}
	if rt.body != nil && op.RequestBody != nil && op.RequestBody.RequestBody != nil {
		op.RequestBody.RequestBody.WithRequired(!rt.bodyOptional)
	}
	if rt.idempotent() {
		op.Parameters = append(op.Parameters, openapi31.ParameterOrReference{Parameter: &openapi31.Parameter{
			Name: HeaderIdempotencyKey, In: openapi31.ParameterInHeader,
			Description: ptr("Makes retries safe: a retry with the same key and request gets the stored response (Idempotent-Replayed: true) and writes nothing; the same key with another request gets 422. Kept 24 h (IDEMPOTENCY_TTL)."),
			Schema:      map[string]any{"type": "string", "minLength": 1, "maxLength": maxIdempotencyKeyLen},
		}})
	}
	if rt.redirects {
		op.Responses.WithMapOfResponseOrReferenceValuesItem(strconv.Itoa(http.StatusMovedPermanently), openapi31.ResponseOrReference{
			Response: (&openapi31.Response{Description: "The same path with a trailing slash, where the 200 is served."}).
				WithHeadersItem("Location", openapi31.HeaderOrReference{Header: &openapi31.Header{
					Description: ptr("The path with its trailing slash."), Schema: map[string]any{"type": "string"},
				}}),
		})
	}
	return nil
}

// operation returns the document's operation for rt, as added.
func operation(r *openapi31.Reflector, rt route) (*openapi31.Operation, error) {
	item := r.Spec.Paths.MapOfPathItemValues[rt.path]
	var op *openapi31.Operation
	switch rt.method {
	case http.MethodGet:
		op = item.Get
	case http.MethodPost:
		op = item.Post
	case http.MethodPatch:
		op = item.Patch
	case http.MethodDelete:
		op = item.Delete
	case http.MethodPut:
		op = item.Put
	}
	if op == nil {
		return nil, fmt.Errorf("operation %s %s not in the document", rt.method, rt.path)
	}
	return op, nil
}

func operationID(r route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.method))
	for _, part := range strings.FieldsFunc(r.path, func(c rune) bool { return c == '/' || c == '-' || c == '_' || c == '.' || c == '{' || c == '}' }) {
		if part == "api" || part == "v1" {
			continue
		}
		b.WriteString(upperFirst(part))
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

var openAPIJSON = sync.OnceValue(func() []byte {
	b, err := buildOpenAPI()
	if err != nil {
		panic(err) // static data: a failure is a programming error caught by tests
	}
	return b
})

// OpenAPI is the document served at /openapi.json.
func OpenAPI() []byte { return openAPIJSON() }

func serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIJSON())
}
