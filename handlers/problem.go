package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
)

// ProblemContentType is RFC 9457's media type for error bodies.
const ProblemContentType = "application/problem+json"

// statusClientClosed is nginx's non-standard code for a request the client
// abandoned.
const statusClientClosed = 499

// problemBase prefixes each problem type. A URN rather than a URL: nothing
// needs to be served at it for clients to switch on it.
const problemBase = "urn:replyrocket:problem:"

// Problem is an RFC 9457 problem detail. Handlers return one as their error
// and the central error handler writes it; nothing else writes error bodies.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`

	retryAfter int // seconds; set for 503s
	cause      error
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	if p.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", p.Status, p.Title, p.Detail, p.cause)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

func (p *Problem) Unwrap() error { return p.cause }

func newProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: problemBase + slug, Title: title, Status: status, Detail: detail}
}

func badRequest(detail string) *Problem {
	return newProblem(http.StatusBadRequest, "bad-request", "Bad request", detail)
}

func validationFailed(errs []FieldError) *Problem {
	p := newProblem(http.StatusBadRequest, "validation", "Validation failed",
		"One or more fields are invalid; see errors.")
	p.Errors = errs
	return p
}

func notFound(what string) *Problem {
	return newProblem(http.StatusNotFound, "not-found", "Not found", what+" not found")
}

func unauthorized(detail string) *Problem {
	return newProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
}

// classify turns any error a handler or middleware returned into the
// problem the client sees. Its detail texts are fixed: database and driver
// messages go to the log, never to the client.
func classify(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromHTTPError(he)
	}
	var dbErr *db.Error
	isDB := errors.As(err, &dbErr)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return notFound("resource")
	case errors.Is(err, db.ErrConflict):
		p := newProblem(http.StatusConflict, "conflict", "Conflict", "The request conflicts with the current state of the resource.")
		if isDB && dbErr.Constraint != "" {
			p.Detail = "The request conflicts with an existing resource (" + dbErr.Constraint + ")."
		}
		return p
	case errors.Is(err, db.ErrInvalidReference):
		return newProblem(http.StatusBadRequest, "invalid-reference", "Invalid reference", "The request refers to a resource that does not exist.")
	case errors.Is(err, db.ErrInvalidValue):
		p := newProblem(http.StatusBadRequest, "validation", "Validation failed", "A value is outside what the database accepts.")
		if isDB && dbErr.Column != "" {
			p.Errors = []FieldError{{Field: dbErr.Column, Message: "invalid value"}}
		} else if isDB && dbErr.Constraint != "" {
			p.Errors = []FieldError{{Field: dbErr.Constraint, Message: "constraint violated"}}
		}
		return p
	case errors.Is(err, db.ErrUnavailable):
		p := newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "The database is unavailable or overloaded; retry later.")
		p.retryAfter = 5
		return p
	case errors.Is(err, db.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return newProblem(http.StatusGatewayTimeout, "timeout", "Timed out", "The request did not complete in time.")
	case errors.Is(err, db.ErrCanceled), errors.Is(err, context.Canceled):
		// The client went away, so nobody reads this; 499 (nginx's code
		// for it) keeps such requests apart from our failures in the logs
		// and metrics.
		return newProblem(statusClientClosed, "canceled", "Client closed request", "The request was canceled.")
	}
	return newProblem(http.StatusInternalServerError, "internal", "Internal server error", "Something went wrong on our side; the request id identifies it in our logs.")
}

func fromHTTPError(he *echo.HTTPError) *Problem {
	switch he.Code {
	case http.StatusNotFound:
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No route matches this path.")
	case http.StatusMethodNotAllowed:
		return newProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "This route does not accept that method.")
	case http.StatusRequestEntityTooLarge:
		return newProblem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			"The body exceeds this route's limit (1 MiB; 16 MiB for bulk email import).")
	case http.StatusServiceUnavailable:
		p := newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "The service is unavailable; retry later.")
		p.retryAfter = 5
		return p
	case http.StatusUnsupportedMediaType:
		return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "Send the body as application/json.")
	}
	title := http.StatusText(he.Code)
	if title == "" || he.Code >= 500 {
		return newProblem(http.StatusInternalServerError, "internal", "Internal server error", "Something went wrong on our side; the request id identifies it in our logs.")
	}
	return newProblem(he.Code, "http-"+strconv.Itoa(he.Code), title, title)
}

// errorHandler is the router's one HTTPErrorHandler.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := *classify(err) // a copy: sentinel problems are shared
		p.Instance = c.Request().URL.Path
		p.RequestID = headerValue(c.Response().Header(), echo.HeaderXRequestID)
		if p.Status >= 500 && p.Status != http.StatusServiceUnavailable && p.Status != http.StatusGatewayTimeout {
			log.ErrorContext(c.Request().Context(), "request failed", "error", err.Error(),
				"request_id", p.RequestID, "method", c.Request().Method, "path", p.Instance)
		} else if p.Status >= 500 {
			log.WarnContext(c.Request().Context(), "request failed", "error", err.Error(),
				"request_id", p.RequestID, "status", p.Status)
		}
		h := c.Response().Header()
		if p.Status == http.StatusUnauthorized {
			h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="replyrocket"`)
		}
		if p.retryAfter > 0 {
			h.Set(echo.HeaderRetryAfter, strconv.Itoa(p.retryAfter))
		}
		h.Set(echo.HeaderContentType, ProblemContentType)
		c.Response().WriteHeader(p.Status)
		if c.Request().Method == http.MethodHead {
			return
		}
		if werr := jsonEncode(c.Response(), p); werr != nil {
			log.DebugContext(c.Request().Context(), "write problem", "error", werr)
		}
	}
}
