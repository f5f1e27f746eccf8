package plugin

import (
	"strings"
	"unicode"

	"iovd.io/k8s/iovd"
)

// An iovd allocation made by this plugin is owned by "k8s:RESOURCE:DEVICE" at first:
// kubelet's Allocate names devices, never the pod (device plugin API v1beta1), so the
// owner says which extended resource and device it serves ("assigned, pod not yet
// known"). Once kubelet's pod-resources API names the container holding the device, the
// reconcile loop relabels it "k8s:NAMESPACE/POD/CONTAINER" (PATCH /v1/allocations/{id}).
// Both forms are the plugin's: a restarted plugin finds its allocations by owner, and
// the second form's resource is its pool's, its device iovd's "device".
const ownerPrefixAll = "k8s:"

func ownerPrefix(resource string) string { return ownerPrefixAll + resource + ":" }

func ownerFor(resource, device string) string { return ownerPrefix(resource) + device }

// holderOwner is the owner naming the container (holder: namespace/pod/container).
func holderOwner(holder string) string { return ownerPrefixAll + holder }

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

// parseHolderOwner: the container an owner made by holderOwner names. Kubernetes names
// (namespaces, pods, containers) never hold ':' or '/', so neither form is taken for the
// other: a resource name always has its '/' and a PCI address its ':'.
func parseHolderOwner(owner string) (holder string, ok bool) {
	rest := strings.TrimPrefix(owner, ownerPrefixAll)
	if rest == owner || strings.ContainsRune(rest, ':') {
		return "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", false
	}
	return rest, true
}

// claim is what the plugin reads from one of its allocations.
type claim struct {
	resource string // the extended resource
	device   string // the device id kubelet knows (its PCI address)
	holder   string // namespace/pod/container; "" while the pod is not yet known
}

// claimOf: whether allocation a is this plugin's, and for which resource and device.
// resourceOf names the resource of a pool ("" when the pool is not served): a relabelled
// owner names the container only, so its resource is its pool's.
func claimOf(a iovd.Allocation, resourceOf func(pool string) string) (claim, bool) {
	if resource, device, ok := parseOwner(a.Owner); ok {
		return claim{resource: resource, device: device}, true
	}
	holder, ok := parseHolderOwner(a.Owner)
	if !ok || a.Pool == nil || a.VM != nil || deviceOf(a) == "" {
		return claim{}, false
	}
	resource := resourceOf(*a.Pool)
	if resource == "" {
		return claim{}, false
	}
	return claim{resource: resource, device: deviceOf(a), holder: holder}, true
}

// deviceOf is the device an allocation was made for: iovd's "device", or, from an iovd
// that does not say, the one the owner names.
func deviceOf(a iovd.Allocation) string {
	if a.Device != "" {
		return a.Device
	}
	_, device, _ := parseOwner(a.Owner)
	return device
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
