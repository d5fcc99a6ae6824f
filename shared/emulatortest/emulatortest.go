// Package emulatortest gates tests that need the local emulators: they run
// when the emulators' variables are set (make test sets them), skip
// otherwise, and fail instead of skipping when IMGPIPE_REQUIRE_EMULATORS=1.
package emulatortest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// All is every variable the local stack sets.
var All = []string{"GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "CLOUDTASKS_EMULATOR_HOST"}

// Require is called from TestMain before m.Run: it returns true when the
// tests may run, or exits the process (0 when skipping, 1 when required).
func Require(pkg string, vars ...string) bool {
	var missing []string
	for _, v := range vars {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return true
	}
	if os.Getenv("IMGPIPE_REQUIRE_EMULATORS") == "1" {
		fmt.Fprintf(os.Stderr, "%s: emulators required but %s unset: run make test\n", pkg, strings.Join(missing, ", "))
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%s: skipping, %s unset (make test starts the emulators)\n", pkg, strings.Join(missing, ", "))
	os.Exit(0)
	return false
}

// Suffix is a random name suffix, so runs never share data.
func Suffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
