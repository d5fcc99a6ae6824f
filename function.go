// Package imgpipe is the deploy root. The Cloud Functions Go buildpack builds
// only the package at the root of the module and looks functions up by name
// when that package imports functions-framework-go/functions, so this one
// file imports the real entry points in ./functions. Nothing else lives here.
package imgpipe

import (
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	_ "github.com/imgpipe/imgpipe/functions"
)
