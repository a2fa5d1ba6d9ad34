package app

import (
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/config"
)

// IPExtractor believes forwarding headers only from the trusted proxies;
// without any, the TCP peer is the client, since a header anyone can send
// proves nothing. From a trusted proxy, X-Forwarded-For is read when
// present, else RFC 7239 Forwarded (its for= addresses); either way the
// client is the nearest address that is not a trusted proxy, as echo's
// X-Forwarded-For extractor walks it. Proxies must append to (or strip)
// the header they do not set: see docs/deployment-trusted-proxies.md.
func IPExtractor(trusted config.Networks) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	xff := echo.ExtractIPFromXFFHeader(opts...)
	return func(req *http.Request) string {
		fwd := req.Header.Values("Forwarded")
		if len(fwd) == 0 || len(req.Header.Values(echo.HeaderXForwardedFor)) > 0 {
			return xff(req)
		}
		// The same walk over Forwarded's addresses, as X-Forwarded-For.
		r := *req
		r.Header = http.Header{echo.HeaderXForwardedFor: {strings.Join(forwardedFor(fwd), ",")}}
		return xff(&r)
	}
}

// forwardedFor lists the for= addresses of Forwarded header values, nearest
// hop last, without quotes, brackets or ports. An element without an
// address (for=unknown, an obfuscated _name, none) stays in the list as
// written: echo's walk stops at what it cannot parse and falls back to the
// TCP peer, the safe answer.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			addr := "unknown"
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					addr = forwardedAddr(strings.Trim(strings.TrimSpace(val), `"`))
				}
			}
			out = append(out, addr)
		}
	}
	return out
}

// forwardedAddr strips a node's port: "[2001:db8::1]:4711" → 2001:db8::1,
// "192.0.2.1:80" → 192.0.2.1.
func forwardedAddr(node string) string {
	if host, _, err := net.SplitHostPort(node); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(node, "["), "]")
}
