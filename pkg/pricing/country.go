package pricing

import (
	"strconv"

	"github.com/nyaruka/phonenumbers"
)

// Country returns the ISO 3166-1 alpha-2 region of the customer number waID
// (E.164 digits, calling code first), or "" when it is not known (no such
// calling code, a non-geographic code, or a number that fits no region of a
// shared calling code). It uses libphonenumber's metadata, allocates and
// takes microseconds: call it only where needed (authentication templates,
// spec 4.5). It does not depend on the catalog's data.
func (c *Catalog) Country(waID uint64) string {
	if waID == 0 {
		return ""
	}
	num, err := phonenumbers.Parse("+"+strconv.FormatUint(waID, 10), "")
	if err != nil {
		return ""
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if len(region) != 2 || region == "ZZ" {
		return ""
	}
	return region
}
