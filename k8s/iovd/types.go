package iovd

import "time"

// Pool is one entry of GET /v1/pools (api/openapi.yaml, schema Pool).
type Pool struct {
	Name        string          `json:"name"`
	Selector    Selector        `json:"selector"`
	Net         *map[string]any `json:"net,omitempty"`
	Capacity    int             `json:"capacity"`
	Free        int             `json:"free"`
	Allocations int             `json:"allocations"`
}

// Selector is a pool's device selector (schema PoolSelector); absent fields match all.
type Selector struct {
	VendorID  string   `json:"vendor_id,omitempty"`
	DeviceID  string   `json:"device_id,omitempty"`
	Class     string   `json:"class,omitempty"`
	Driver    string   `json:"driver,omitempty"`
	Physfn    string   `json:"physfn,omitempty"`
	NumaNode  *int     `json:"numa_node,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// Held is a device's "allocation" field: the allocation holding it, or the quarantine.
type Held struct {
	ID     string `json:"id"`
	Owner  string `json:"owner"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// Device is one PCI function of GET /v1/devices (schema Device), the fields used here.
type Device struct {
	Address    string  `json:"address"`
	VendorID   string  `json:"vendor_id"`
	DeviceID   string  `json:"device_id"`
	Class      string  `json:"class"`
	Driver     *string `json:"driver"`
	IOMMUGroup *int    `json:"iommu_group"`
	NumaNode   *int    `json:"numa_node"`
	Physfn     *string `json:"physfn"`
	Allocation *Held   `json:"allocation"`
}

// Quarantined is one entry of GET /v1/quarantine.
type Quarantined struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// Allocation is schema Allocation.
type Allocation struct {
	ID         string          `json:"id"`
	Owner      string          `json:"owner"`
	Pool       *string         `json:"pool"`
	State      string          `json:"state"`
	Devices    []string        `json:"devices"`
	Device     string          `json:"device"` // the function asked for; the others of its group come with it
	VM         *string         `json:"vm"`
	IOMMUGroup int             `json:"iommu_group"`
	VFIOGroup  string          `json:"vfio_group"`
	Created    string          `json:"created"`
	Net        *map[string]any `json:"net"`
}

// CreatedTime parses Created (RFC 3339, UTC); the zero time when it cannot.
func (a *Allocation) CreatedTime() time.Time {
	t, err := time.Parse(time.RFC3339, a.Created)
	if err != nil {
		return time.Time{}
	}
	return t
}
