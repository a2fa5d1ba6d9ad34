package handlers

import (
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// accessLog writes one structured line per request and records its
// metrics. It hands errors to the error handler itself so that the status
// it logs is the one the client got.
//
// The line goes to the handler as a record with no caller: Logger.LogAttrs
// would walk the stack for a source location on every request (runtime.Callers,
// ≈ 0.35 µs of a cached request's ≈ 30 in the loadtest's profile) that no
// handler here prints.
//
// Where the handler takes JSON lines of its own (jsonLineWriter: the
// serving process's JSON log, internal/logbuf), the line is encoded here,
// byte for byte as slog's JSONHandler encodes it (TestAccessLineMatchesSlog,
// FuzzAccessLine): with its buffered write, the line cost 2.5 µs of a
// cached read's 35 through slog's record, attributes and handler in the
// loadtest's profile, and costs 1.2 encoded here (0.46 the encoding).
func accessLog(log *slog.Logger, m *httpMetrics) echo.MiddlewareFunc {
	h := log.Handler()
	lines, _ := h.(jsonLineWriter)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			elapsed := time.Since(start)
			req, res := c.Request(), c.Response()
			route := c.Path()
			if route == "" || c.Handler() == nil {
				route = "(unmatched)"
			}
			m.observe(req.Method, route, res.Status, elapsed)
			level := slog.LevelInfo
			if res.Status >= 500 {
				level = slog.LevelError
			}
			ctx := req.Context()
			if !h.Enabled(ctx, level) {
				return nil
			}
			a := accessEntry{
				time: start.Add(elapsed), level: level,
				requestID: headerValue(res.Header(), echo.HeaderXRequestID), method: req.Method, path: req.URL.Path, route: route,
				status: res.Status, bytes: res.Size, latencyUS: elapsed.Microseconds(), ip: c.RealIP(),
			}
			if err != nil {
				a.err = err.Error()
			}
			// As Logger.Log does: a log line has no one to fail to.
			if lines != nil {
				buf := lineBufs.Get().(*[]byte)
				*buf = a.appendJSON((*buf)[:0])
				_ = lines.WriteJSONLine(level, *buf)
				if cap(*buf) <= maxPooledLine {
					lineBufs.Put(buf)
				}
				return nil
			}
			_ = h.Handle(ctx, a.record())
			return nil
		}
	}
}

// jsonLineWriter is a slog.Handler that also takes whole lines encoded as
// its own slog.JSONHandler would encode them (internal/logbuf's handler of
// a JSON log), keeping its flushing rules by level.
type jsonLineWriter interface {
	WriteJSONLine(level slog.Level, line []byte) error
}

// accessEntry is one request's access-log line: every field the log
// promises, in its order (TestAccessLogFields).
type accessEntry struct {
	time                               time.Time
	level                              slog.Level
	requestID, method, path, route, ip string
	status                             int
	bytes, latencyUS                   int64
	err                                string // "" when the request succeeded
}

func (a *accessEntry) record() slog.Record {
	r := slog.NewRecord(a.time, a.level, "request", 0)
	r.AddAttrs(
		slog.String("request_id", a.requestID),
		slog.String("method", a.method),
		slog.String("path", a.path),
		slog.String("route", a.route),
		slog.Int("status", a.status),
		slog.Int64("bytes", a.bytes),
		// An integer: slog's JSON handler writes a float through
		// json.Marshal, a quarter of the line's cost.
		slog.Int64("latency_us", a.latencyUS),
		slog.String("ip", a.ip),
	)
	if a.err != "" {
		r.AddAttrs(slog.String("error", a.err))
	}
	return r
}

// lineBufs holds access-log line buffers between requests; a line is about
// 300 bytes. One grown past maxPooledLine (a long error text) is left to
// the collector rather than kept by the pool.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledLine = 16 << 10

// appendJSON appends the line as slog.JSONHandler writes the record() of
// a (with no ReplaceAttr): time, level, msg, then the attributes, and a
// newline.
func (a *accessEntry) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = appendLogTime(b, a.time)
	b = append(b, `","level":"`...)
	b = append(b, a.level.String()...)
	b = append(b, `","msg":"request","request_id":`...)
	b = appendSlogString(b, a.requestID)
	b = append(b, `,"method":`...)
	b = appendSlogString(b, a.method)
	b = append(b, `,"path":`...)
	b = appendSlogString(b, a.path)
	b = append(b, `,"route":`...)
	b = appendSlogString(b, a.route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, a.bytes, 10)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, a.latencyUS, 10)
	b = append(b, `,"ip":`...)
	b = appendSlogString(b, a.ip)
	if a.err != "" {
		b = append(b, `,"error":`...)
		b = appendSlogString(b, a.err)
	}
	return append(b, "}\n"...)
}

// appendSlogString appends s quoted as slog's JSON handler quotes strings,
// which is encoding/json's quoting without its HTML escapes: \" \\ \n \r
// \t, other control bytes as \u00xx, invalid UTF-8 as \ufffd, and U+2028
// and U+2029 escaped.
func appendSlogString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendLogTime appends t as t.AppendFormat(b, time.RFC3339Nano) does,
// which is how slog's JSON handler writes a record's time. A line's time
// is within the second of the last one's almost always, so the date, the
// clock to the second and the zone are formatted once a second (per
// location) and kept; only the fraction is written per line. Formatting
// the whole time was 0.33 µs of a cached read in the loadtest's profile.
func appendLogTime(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	s := lastLogSecond.Load()
	if s == nil || s.unix != sec || s.loc != loc {
		whole := t.Truncate(time.Second)
		s = &logSecond{unix: sec, loc: loc,
			clock: whole.AppendFormat(nil, "2006-01-02T15:04:05"), zone: whole.AppendFormat(nil, "Z07:00")}
		lastLogSecond.Store(s)
	}
	b = append(b, s.clock...)
	if ns := t.Nanosecond(); ns != 0 {
		// RFC3339Nano's .999999999: nine digits, trailing zeros dropped.
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, s.zone...)
}

// logSecond is one second of one location as appendLogTime writes it.
type logSecond struct {
	unix        int64
	loc         *time.Location
	clock, zone []byte
}

var lastLogSecond atomic.Pointer[logSecond]
