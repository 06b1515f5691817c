package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release or git description of this build.
var Version = ""

// Info describes the build.
type Info struct {
	Version   string
	Revision  string
	GoVersion string
	Platform  string
}

// Get returns the build's Info.
func Get() Info {
	i := Info{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				i.Revision = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

func (i Info) String() string {
	s := "ebb " + i.Version
	if i.Revision != "" {
		s += " (" + i.Revision + ")"
	}
	return fmt.Sprintf("%s %s %s", s, i.GoVersion, i.Platform)
}
