package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/monitor"
)

// maxWindow bounds the slow-queries window; the monitor keeps snapshots
// for its retention period at most anyway.
const maxWindow = 7 * 24 * time.Hour

type monitorHandlers struct {
	m *monitor.Monitor
	// hasCache: the cache routes are served, so the dashboard links them.
	hasCache bool
}

func (h monitorHandlers) performance(c echo.Context) error {
	p, err := h.m.Performance(c.Request().Context())
	if err != nil {
		return monitorProblem(err)
	}
	p.Links = map[string]string{"health": "/health/db", "slow_queries": "/db-monitor/slow-queries"}
	if h.hasCache {
		// Only linked when there is a cache: the route exists then.
		p.Links["cache"] = "/db-monitor/cache"
	}
	return writeJSON(c, http.StatusOK, p)
}

func (h monitorHandlers) slowQueries(c echo.Context) error {
	var window time.Duration
	if v := c.QueryParam("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxWindow {
			return validationFailed([]FieldError{{Field: "window", Message: "must be a duration such as 15m or 1h, at most 168h"}})
		}
		window = d
	}
	s, err := h.m.SlowQueries(c.Request().Context(), window)
	if err != nil {
		return monitorProblem(err)
	}
	return writeJSON(c, http.StatusOK, s)
}

func (h monitorHandlers) analyzeQuery(c echo.Context) error {
	var req monitor.AnalyzeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.SQL == "" {
		return validationFailed([]FieldError{{Field: "sql", Message: "is required"}})
	}
	a, err := h.m.AnalyzeQuery(c.Request().Context(), req)
	if err != nil {
		return monitorProblem(err)
	}
	return writeJSON(c, http.StatusOK, a)
}

func (h monitorHandlers) optimizeQuery(c echo.Context) error {
	var req monitor.OptimizeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.SQL == "" {
		return validationFailed([]FieldError{{Field: "sql", Message: "is required"}})
	}
	o, err := h.m.OptimizeQuery(c.Request().Context(), req)
	if err != nil {
		return monitorProblem(err)
	}
	return writeJSON(c, http.StatusOK, o)
}

func (h monitorHandlers) tableStats(c echo.Context) error {
	t, err := h.m.TableStats(c.Request().Context(), c.Param("table_name"))
	if err != nil {
		return monitorProblem(err)
	}
	return writeJSON(c, http.StatusOK, t)
}

// monitorProblem maps the monitor's errors to problems with fixed texts:
// nothing the database said reaches the client, since for analyze-query it
// could quote the data the query read.
func monitorProblem(err error) error {
	switch {
	case errors.Is(err, monitor.ErrInvalidQuery):
		p := newProblem(http.StatusBadRequest, "invalid-query", "Query refused", "Only one read-only SELECT can be analyzed.")
		if reason, ok := monitor.RefusalReason(err); ok {
			p.Detail = reason
		}
		p.cause = err
		return p
	case errors.Is(err, monitor.ErrAnalyzeDisabled):
		p := newProblem(http.StatusForbidden, "analyze-disabled", "EXPLAIN ANALYZE disabled", monitor.ErrAnalyzeDisabled.Error())
		p.cause = err
		return p
	case errors.Is(err, monitor.ErrNotFound):
		p := notFound("table")
		p.cause = err
		return p
	case errors.Is(err, monitor.ErrQueryTimeout):
		p := newProblem(http.StatusGatewayTimeout, "timeout", "Timed out", monitor.ErrQueryTimeout.Error())
		p.cause = err
		return p
	case errors.Is(err, monitor.ErrQueryFailed):
		p := newProblem(http.StatusBadRequest, "query-failed", "Query failed", monitor.ErrQueryFailed.Error())
		if code := monitor.SQLState(err); code != "" {
			// A SQLSTATE names the class of failure (25006: a write in a
			// read-only transaction) without any of the data involved.
			p.Detail += " (SQLSTATE " + code + ")"
		}
		p.cause = err
		return p
	case errors.Is(err, monitor.ErrUnavailable):
		p := newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", monitor.ErrUnavailable.Error())
		p.retryAfter = 5
		p.cause = err
		return p
	}
	return err
}
