package traffic

// country is what the generator knows of a customer country: how its mobile
// numbers look, its (approximate, fixed) UTC offset for the daily rhythm,
// the template language and a few names.
type country struct {
	code string // ISO 3166-1 alpha-2, as in Config
	// prefixes are calling code plus mobile prefix; a number is a prefix
	// followed by width subscriber digits. No prefix of any country is a
	// prefix of another's, so numbers never collide across countries, and
	// every number is valid for libphonenumber (GB avoids the ranges of
	// Jersey, Guernsey and the Isle of Man). len(prefixes) * (10^width -
	// lowest) must be at least maxCustomersPerAccount.
	prefixes []uint64
	width    int
	// lowest is the smallest subscriber part: a NANP exchange code cannot
	// start with 0 or 1.
	lowest   uint64
	offset   int64 // seconds east of UTC
	language string
	names    []string
}

// countries are the markets the generator can draw customers from. +1 809 /
// 829 / 849 (Dominican Republic) is not North America: the longest prefix
// wins in the pricing data, which is what they exercise.
var countries = []country{
	{code: "US", prefixes: []uint64{1415, 1650, 1212, 1312, 1305, 1713, 1206, 1617}, width: 7, lowest: 2_000_000, offset: -5 * 3600, language: "en_US",
		names: []string{"Sam Lee", "Maria Garcia", "James Smith", "Olivia Brown", "Noah Johnson", "Emma Davis"}},
	{code: "BR", prefixes: []uint64{55119, 55219, 55319, 55419, 55519, 55619, 55719, 55819}, width: 8, offset: -3 * 3600, language: "pt_BR",
		names: []string{"Ana Souza", "João Silva", "Mariana Costa", "Pedro Oliveira", "Beatriz Santos", "Lucas Pereira"}},
	{code: "IN", prefixes: []uint64{919, 918, 917, 916}, width: 9, offset: 5*3600 + 1800, language: "en",
		names: []string{"Priya Sharma", "Rahul Verma", "Ananya Iyer", "Arjun Mehta", "Kavya Reddy", "Rohan Gupta"}},
	{code: "MX", prefixes: []uint64{5255, 5233, 5281}, width: 8, offset: -6 * 3600, language: "es_MX",
		names: []string{"Luis Hernández", "Sofía Martínez", "Diego López", "Valentina Ramírez", "Carlos Flores"}},
	{code: "ID", prefixes: []uint64{62812, 62813, 62857, 62878}, width: 7, offset: 7 * 3600, language: "id",
		names: []string{"Budi Santoso", "Siti Rahayu", "Agus Pratama", "Dewi Lestari", "Rizky Hidayat"}},
	{code: "DE", prefixes: []uint64{49151, 49160, 49170, 49176}, width: 8, offset: 1 * 3600, language: "de",
		names: []string{"Lukas Müller", "Anna Schmidt", "Felix Weber", "Lea Fischer", "Jonas Wagner"}},
	{code: "GB", prefixes: []uint64{447400, 447412, 447538, 447712, 447766, 447885, 447951, 447979}, width: 6, offset: 0, language: "en_GB",
		names: []string{"Oliver Taylor", "Amelia Wilson", "Harry Evans", "Isla Thomas", "George Roberts"}},
	{code: "NG", prefixes: []uint64{23480, 23481, 23470, 23490}, width: 8, offset: 1 * 3600, language: "en",
		names: []string{"Chinedu Okafor", "Aisha Bello", "Tunde Adeyemi", "Ngozi Eze", "Emeka Nwosu"}},
	{code: "DO", prefixes: []uint64{1809, 1829, 1849}, width: 7, lowest: 2_000_000, offset: -4 * 3600, language: "es",
		names: []string{"José Rodríguez", "Yanelis Pérez", "Rafael Núñez", "Carmen Reyes"}},
	{code: "ZW", prefixes: []uint64{26371, 26373, 26377, 26378}, width: 7, offset: 2 * 3600, language: "en",
		names: []string{"Tendai Moyo", "Rudo Ncube", "Farai Dube", "Chipo Sibanda"}},
}

func countryIndex(code string) int {
	for i := range countries {
		if countries[i].code == code {
			return i
		}
	}
	return -1
}

// diurnal is the relative traffic of each local hour of the day (max 1):
// quiet nights, a late-morning and an afternoon peak.
var diurnal = [24]float64{
	0.15, 0.08, 0.05, 0.04, 0.05, 0.10, 0.25, 0.45, 0.70, 0.90, 1.00, 1.00,
	0.95, 0.90, 0.95, 1.00, 0.95, 0.90, 0.85, 0.85, 0.80, 0.65, 0.45, 0.28,
}

func meanDiurnal() float64 {
	var sum float64
	for _, w := range diurnal {
		sum += w
	}
	return sum / float64(len(diurnal))
}

// Template names by category, as a BSP's customers name them.
var (
	marketingTemplates = []string{"summer_sale", "new_arrivals", "abandoned_cart", "loyalty_points", "back_in_stock", "weekend_offer"}
	utilityTemplates   = []string{"order_update", "shipping_update", "payment_receipt", "appointment_reminder", "delivery_confirmation"}
	authTemplates      = []string{"login_code", "verify_account", "reset_password_code"}
)

// Texts of messages, both directions.
var (
	customerTexts = []string{
		"Hi, is my order on its way?", "Do you have this in blue?", "What time do you open tomorrow?",
		"I want to change my delivery address", "Thanks!", "Can I pay on delivery?", "Is there a discount for students?",
	}
	businessTexts = []string{
		"Hello! How can we help you today?", "Your order left our warehouse this morning.",
		"Yes, it is available in blue, sizes S to XL.", "We open at 9:00 tomorrow.",
		"Done: your delivery address is updated.", "You are welcome, have a nice day!",
	}
	buttonTitles = []string{"Yes, show me", "Not now", "Talk to an agent", "Track my order"}
	emojis       = []string{`\ud83d\udc4d`, `\u2764\ufe0f`, `\ud83d\ude4f`, `\ud83d\ude00`}
)
