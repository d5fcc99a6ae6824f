package wire

import "fmt"

// FormatBytes writes a byte count of the API (a status's inputBytes,
// outputBytes and savedBytes, an output's size) for people, as the status
// page and the imgpipe command both show it: binary units, as imgpipe's
// limits are given (12 B, 340.0 KiB, 1.5 MiB, 2.50 GiB). A negative count,
// an output larger than its input, keeps its sign.
func FormatBytes(n int64) string {
	switch a := max(n, -n); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
