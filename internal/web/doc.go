// Package web is what every HTML and JSON endpoint shares: middleware (request
// id, security headers, access log, metrics, panic recovery), the CSRF token
// scheme, client-address resolution behind trusted proxies, and the
// server-rendered pages (html/template, no external assets).
package web
