package app

import (
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/config"
)

// IPExtractor believes X-Forwarded-For only from the trusted proxies;
// without any, the TCP peer is the client, since a header anyone can send
// proves nothing.
func IPExtractor(trusted config.Networks) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
