// Package cloudlog makes a log/slog logger whose JSON lines Cloud Logging
// reads as structured entries: "severity" and "message" instead of "level"
// and "msg".
package cloudlog

import (
	"io"
	"log/slog"
)

// New returns a JSON logger writing to w at level Info and above.
func New(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				a.Key = "severity"
				if l, ok := a.Value.Any().(slog.Level); ok && l == slog.LevelWarn {
					a.Value = slog.StringValue("WARNING")
				}
			case slog.MessageKey:
				a.Key = "message"
			}
			return a
		},
	}))
}
