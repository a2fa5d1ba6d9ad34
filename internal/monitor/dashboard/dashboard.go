// Package dashboard is the /db-monitor/ page: one HTML document with its
// script and styles inlined, embedded in the binary, so users need no build
// step and the router serves one route. The page holds no data: it reads the
// admin-only JSON endpoints with the key the user enters, so it can be
// served without authentication.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static/index.html static/app.js static/style.css
var static embed.FS

// page is the assembled document and csp the Content-Security-Policy that
// allows exactly its inline script and styles (by hash) and nothing else.
var page, csp = assemble()

func assemble() ([]byte, string) {
	read := func(name string) string {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			// The files are embedded at build time; a missing one is a
			// build defect, not a runtime condition.
			panic("dashboard: " + err.Error())
		}
		return string(b)
	}
	js, css := read("app.js"), read("style.css")
	html := read("index.html")
	html = strings.Replace(html, "/*STYLE*/", css, 1)
	html = strings.Replace(html, "/*SCRIPT*/", js, 1)
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	policy := "default-src 'none'; connect-src 'self'; img-src 'self' data:; " +
		"script-src " + hash(js) + "; style-src " + hash(css) + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return []byte(html), policy
}

// Handler serves the page.
func Handler() echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", page)
	}
}
