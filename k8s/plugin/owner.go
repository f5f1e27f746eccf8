package plugin

import (
	"strings"
	"unicode"
)

// An iovd allocation made by this plugin is owned by "k8s:RESOURCE:DEVICE". kubelet's
// Allocate names devices, never the pod (device plugin API v1beta1), so the owner says
// which extended resource and device it serves; which container holds the device is
// learned from kubelet's pod-resources API, and that decides the release.
const ownerPrefixAll = "k8s:"

func ownerPrefix(resource string) string { return ownerPrefixAll + resource + ":" }

func ownerFor(resource, device string) string { return ownerPrefix(resource) + device }

// parseOwner splits an owner made by ownerFor; ok is false for any other owner.
func parseOwner(owner string) (resource, device string, ok bool) {
	rest := strings.TrimPrefix(owner, ownerPrefixAll)
	if rest == owner {
		return "", "", false
	}
	i := strings.IndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// envName is the variable the SR-IOV community's plugin sets for a resource:
// PCIDEVICE_ and the resource name upper-cased, every other character an underscore
// (iovd.io/nvme-vfs -> PCIDEVICE_IOVD_IO_NVME_VFS).
func envName(resource string) string {
	var b strings.Builder
	b.WriteString("PCIDEVICE_")
	for _, r := range resource {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
