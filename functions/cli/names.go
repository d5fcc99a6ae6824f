package cli

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Bounds of the parts of a downloaded file's name, in bytes: with the
// image number, a ~N suffix and .jpg, a name stays far below the 255 bytes
// file systems allow.
const (
	maxSerialPart = 80
	maxSizePart   = 40
)

// namePart makes s, a serial number or a size name as the server sent it,
// a safe piece of a file name: ASCII letters, digits, '.', '_' and '-'
// are kept, anything else (path separators, NUL and control bytes,
// non-ASCII) becomes '_'; at most max bytes; a leading '.' or '-' becomes
// '_' (no hidden file, no "..", nothing a shell reads as an option); a
// Windows device name (CON, NUL, COM1…) gets a leading '_'; empty becomes
// fallback.
func namePart(s, fallback string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	part := b.String()
	if part == "" {
		return fallback
	}
	if part[0] == '.' || part[0] == '-' {
		part = "_" + part[1:]
	}
	stem, _, _ := strings.Cut(part, ".")
	if windowsDevice(stem) {
		part = "_" + part
	}
	return part
}

// windowsDevice says whether stem is a name Windows reserves for a device
// in every folder, whatever the extension.
func windowsDevice(stem string) bool {
	switch u := strings.ToUpper(stem); {
	case u == "CON", u == "PRN", u == "AUX", u == "NUL":
		return true
	case len(u) == 4 && (strings.HasPrefix(u, "COM") || strings.HasPrefix(u, "LPT")) && u[3] >= '0' && u[3] <= '9':
		return true
	}
	return false
}

// outputNames hands out the file names of one download: distinct even on
// a file system that ignores case, so two products whose serial numbers
// differ only in what namePart replaced never overwrite each other. It
// counts the times each stem (lower-cased) was asked for.
type outputNames map[string]int

// take returns stem.jpg the first time, then stem~2.jpg, stem~3.jpg…, and
// refuses a name that is not local to the output folder. Stems are made of
// namePart's characters, digits and '-', never '~', so a numbered name
// never equals another stem's.
func (n outputNames) take(stem string) (string, error) {
	key := strings.ToLower(stem)
	n[key]++
	name := stem + ".jpg"
	if k := n[key]; k > 1 {
		name = fmt.Sprintf("%s~%d.jpg", stem, k)
	}
	if !filepath.IsLocal(name) || filepath.Base(name) != name {
		return "", fmt.Errorf("the output name %q would leave the download folder: refused", name)
	}
	return name, nil
}
