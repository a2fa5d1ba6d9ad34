package handlers

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// Validation rules live on the request types as tags (minLength, maxLength,
// minimum, maximum, default), which the OpenAPI document shows; the
// handlers read the same tags here, once at start, so a limit is written in
// one place. A tag that is missing or malformed panics at package
// initialisation: a programming error that every test run catches.

// textRule is a text field's length bounds, in characters.
type textRule struct{ min, max int }

// intRule is an integer query parameter's name, default and bounds.
type intRule struct {
	name          string
	def, min, max int
}

var (
	campaignNameRule = lengthOf[createCampaignInput]("name")
	recipientRule    = lengthOf[newEmailInput]("recipient")
	subjectRule      = lengthOf[newEmailInput]("subject")
	bodyRule         = lengthOf[newEmailInput]("body")
	userEmailRule    = lengthOf[createUserInput]("email")
	userNameRule     = lengthOf[createUserInput]("name")
	keyNameRule      = lengthOf[createKeyInput]("name")
	limitRule        = rangeOf[pageParams]("limit")
	daysRule         = rangeOf[dailyStatsParams]("days")
)

// field finds T's field whose tag key names name, embedded structs included.
func field[T any](key, name string) reflect.StructField {
	t := reflect.TypeFor[T]()
	f, ok := findField(t, key, name)
	if !ok {
		panic(fmt.Sprintf("handlers: %s has no field tagged %s:%q", t, key, name))
	}
	return f
}

func findField(t reflect.Type, key, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if g, ok := findField(f.Type, key, name); ok {
				return g, true
			}
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get(key), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func intTag(f reflect.StructField, key string) int {
	n, err := strconv.Atoi(f.Tag.Get(key))
	if err != nil {
		panic(fmt.Sprintf("handlers: field %s: tag %s=%q is not a number", f.Name, key, f.Tag.Get(key)))
	}
	return n
}

func lengthOf[T any](jsonName string) textRule {
	f := field[T]("json", jsonName)
	return textRule{min: intTag(f, "minLength"), max: intTag(f, "maxLength")}
}

func rangeOf[T any](queryName string) intRule {
	f := field[T]("query", queryName)
	return intRule{name: queryName, def: intTag(f, "default"), min: intTag(f, "minimum"), max: intTag(f, "maximum")}
}

// checkRule validates a text field against its rule before the database
// sees it: a length in characters, and no NUL, which PostgreSQL text cannot
// hold.
func checkRule(errs []FieldError, field, v string, r textRule) []FieldError {
	n := utf8.RuneCountInString(v)
	switch {
	case strings.ContainsRune(v, 0):
		return append(errs, FieldError{Field: field, Message: "must not contain NUL characters"})
	case n < r.min && r.min == 1:
		return append(errs, FieldError{Field: field, Message: "is required"})
	case n < r.min || n > r.max:
		return append(errs, FieldError{Field: field, Message: fmt.Sprintf("must be %d to %d characters", r.min, r.max)})
	}
	return errs
}

// queryRule reads an optional integer query parameter within its rule.
func queryRule(c echo.Context, r intRule) (int, error) {
	raw := c.QueryParam(r.name)
	if raw == "" {
		return r.def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < r.min || n > r.max {
		return 0, validationFailed([]FieldError{{Field: r.name, Message: fmt.Sprintf("must be a whole number from %d to %d", r.min, r.max)}})
	}
	return n, nil
}
