"""Word lists the normaliser and the detectors share (English, lower case)."""

from __future__ import annotations

UNITS = {
    "zero": 0, "oh": 0, "o": 0, "nought": 0, "naught": 0, "nil": 0,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
REPEATS = {"double": 2, "triple": 3}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}
# "oh", "o" and "nought" are zero only beside other number words ("oh one two"), never alone.
WEAK_ZEROS = {"oh", "o", "nought", "naught", "nil"}

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
# Abbreviations that are also common words count as months only in a full date ("May 5th").
AMBIGUOUS_MONTHS = {"may", "march", "mar", "jan", "sep", "dec", "jun", "jul", "aug", "oct", "nov", "apr", "feb"}

# A number followed by one of these is a quantity, a duration or a price, not an identifier.
# (No single letters: Whisper writes "981 Elm" as "981m3".)
UNITS_OF_MEASURE = {
    "second", "seconds", "sec", "secs", "minute", "minutes", "min", "mins", "hour", "hours", "hr", "hrs",
    "day", "days", "week", "weeks", "month", "months", "year", "years", "decade", "decades",
    "gram", "grams", "kilogram", "kilograms", "kilo", "kilos", "kg", "milligram", "milligrams", "mg",
    "pound", "pounds", "lb", "lbs", "ounce", "ounces", "oz", "ton", "tons", "tonnes",
    "litre", "litres", "liter", "liters", "millilitre", "millilitres", "milliliter", "milliliters", "ml",
    "cup", "cups", "teaspoon", "teaspoons", "tablespoon", "tablespoons", "pint", "pints", "gallon", "gallons",
    "degree", "degrees", "percent", "per", "%", "times", "fold",
    "dollar", "dollars", "euro", "euros", "cent", "cents", "bucks", "quid", "pence", "yen", "rupees",
    "mile", "miles", "kilometre", "kilometres", "kilometer", "kilometers", "km", "metre", "metres", "meter",
    "meters", "feet", "foot", "ft", "inch", "inches", "yard", "yards", "centimetres", "centimeters", "cm",
    "calories", "steps", "people", "pieces", "items", "tablets", "pills", "bottles", "boxes", "slices",
    "o'clock", "oclock", "am", "pm", "a.m.", "p.m.", "hz", "watts", "volts", "mph", "bpm",
    "page", "pages", "songs", "points", "votes", "words",
}
CURRENCY_SIGNS = {"$", "£", "€", "¥"}
# Before a time of day: "at seven thirty", "by half past".
TIME_CUES = {"at", "by", "until", "till", "til", "from", "before", "after", "around", "about"}
# Before a time cue: what things happen at ("starts at", "wake me up at", "set an alarm for").
TIMED_EVENTS = {
    "start", "starts", "started", "begin", "begins", "leave", "leaves", "left", "arrive", "arrives", "land",
    "lands", "depart", "departs", "open", "opens", "close", "closes", "end", "ends", "finish", "finishes",
    "up", "meet", "meeting", "alarm", "call", "back", "home", "dinner", "lunch", "breakfast", "bed", "there",
}
AFTER_TIME = {"am", "pm", "a.m.", "p.m.", "o'clock", "oclock", "tonight", "tomorrow", "today", "sharp", "morning", "evening", "afternoon"}
YEAR_CUES = {"in", "since", "year", "of", "from", "until", "by", "before", "after", "around", "circa", "back"}

STREET_SUFFIXES = {
    "street", "st", "lane", "ln", "avenue", "ave", "av", "road", "rd", "drive", "dr", "boulevard", "blvd",
    "court", "ct", "way", "place", "pl", "terrace", "ter", "circle", "cir", "crescent", "cres", "close",
    "parkway", "pkwy", "highway", "hwy", "square", "sq", "trail", "trl", "row", "alley", "grove", "gardens",
    "mews", "walk", "hill", "park", "pike", "loop", "path", "plaza", "run", "view", "crossing", "point",
    "ridge", "green", "heights", "rise", "wharf", "quay", "broadway", "expressway", "freeway",
}
UNIT_WORDS = {"apartment", "apt", "unit", "suite", "ste", "flat", "floor", "room", "#", "number", "no"}
DIRECTIONS = {"north", "south", "east", "west", "n", "s", "e", "w", "ne", "nw", "se", "sw", "northeast", "northwest", "southeast", "southwest"}
# After these the next number and words are an address whatever they sound like ("I live at 33
# merch one day" for "33 Birchwood Lane").
ADDRESS_CUES = (
    ("i", "live", "at"), ("i", "live", "on"), ("i", "leave", "at"), ("live", "at"), ("lives", "at"), ("living", "at"), ("address", "is"),
    ("send", "it", "to"), ("deliver", "it", "to"), ("delivered", "to"), ("ship", "it", "to"), ("mail", "it", "to"),
    ("located", "at"), ("moved", "to"), ("my", "address"),
)
POSTCODE_CUES = {"zip", "zipcode", "postcode", "postal", "post"}
US_STATES = {
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut", "delaware", "florida",
    "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa", "kansas", "kentucky", "louisiana", "maine",
    "maryland", "massachusetts", "michigan", "minnesota", "mississippi", "missouri", "montana", "nebraska",
    "nevada", "hampshire", "jersey", "mexico", "york", "carolina", "dakota", "ohio", "oklahoma", "oregon",
    "pennsylvania", "island", "tennessee", "texas", "utah", "vermont", "virginia", "washington", "wisconsin",
    "wyoming",
    # Two-letter codes that are not also common words ("in", "or", "me", "hi" are left out).
    "ny", "ca", "tx", "fl", "il", "nj", "nc", "ga", "va", "wa", "az", "mi", "md", "mn", "wi", "mo", "tn", "sc",
    "ky", "ct", "ut", "ia", "nv", "ar", "ms", "ks", "nm", "wv", "nh", "ri", "sd", "nd", "ak", "dc", "vt", "wy",
}

TLDS = {
    "com", "org", "net", "edu", "gov", "io", "co", "uk", "us", "ca", "de", "fr", "nl", "au", "in", "info",
    "biz", "me", "ie", "es", "it", "ch", "se", "no", "dk", "fi", "be", "at", "nz", "jp", "br", "mx", "za",
    "eu", "app", "dev", "ai", "tv", "ly", "health", "mail",
}
EMAIL_CONNECTORS = {"dot": ".", "period": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
URL_MARKERS = {"www", "http", "https", "slash", "forward"}

# Person names: phrases after which the next words are a name whatever they sound like (an ASR
# writes a rare surname as common words: "Okafor" -> "oak a four"), and phrases after which they are
# a name only if they look like one (listed or capitalised).
STRONG_NAME_CUES = (
    ("my", "name", "is"), ("name", "is"), ("my", "name's"), ("name's",), ("surname", "is"), ("last", "name", "is"),
    ("first", "name", "is"), ("full", "name", "is"), ("family", "name", "is"), ("middle", "name", "is"),
    ("maiden", "name", "is"), ("my", "surname"), ("my", "last", "name"), ("my", "first", "name"),
    ("under", "the", "name"), ("name", "of"), ("spell", "that"), ("spelled",),
    ("spelt",), ("spelling",), ("spell", "it"), ("spell",),
)
TITLES = {"mr", "mrs", "ms", "miss", "mister", "missus", "dr", "doctor", "professor", "prof", "nurse", "sister", "father", "mx"}
WEAK_NAME_CUES = (
    ("this", "is"), ("it's",), ("it", "is"), ("i'm",), ("i", "am"), ("calling", "for"), ("speak", "to"),
    ("speak", "with"), ("talk", "to"), ("ask", "for"), ("looking", "for"), ("dear",), ("hi",), ("hello",),
    ("thanks",), ("thank", "you"), ("bye",), ("called",), ("named",),
)
# "Margaret speaking", "Okafor here".
NAME_BEFORE = {"speaking", "here"}

# Words after a strong cue that end the name ("my name is John and I ...").
NAME_STOPS = {
    "and", "i", "i'm", "im", "i've", "i'll", "i'd", "from", "calling", "my", "is", "was", "the", "please", "here",
    "speaking", "but", "so", "um", "uh", "er", "erm", "who", "that", "which", "because", "with", "at", "on", "in",
    "you", "we", "they", "he", "she", "it", "it's", "this", "there", "yes", "no", "yeah", "okay", "ok",
    "thanks", "thank", "hi", "hello", "how", "what", "can", "could", "would", "will", "do", "does", "did",
    "have", "has", "had", "are", "am", "be", "been", "to", "for", "of", "about", "regarding", "phone", "number",
    "email", "address", "live", "lives", "born", "date", "account", "card", "calling", "call",
}
# Common words that are also in the census name lists: after a weak cue they are not a name
# ("this is fine", "I'm good", "it's early", "speak to Will" still needs capitals to count).
COMMON_WORDS = {
    "a", "an", "the", "and", "or", "but", "so", "not", "no", "yes", "all", "any", "some", "very", "just",
    "good", "fine", "great", "well", "sure", "ok", "okay", "right", "wrong", "true", "real", "really", "best",
    "better", "bad", "nice", "happy", "glad", "sorry", "early", "late", "long", "short", "young", "old", "new",
    "little", "big", "small", "large", "free", "busy", "ready", "done", "here", "there", "now", "then", "still",
    "also", "only", "even", "back", "down", "up", "out", "over", "off", "about", "around", "after", "before",
    "again", "ever", "never", "always", "sometimes", "maybe", "probably", "actually", "about", "like", "love",
    "hope", "will", "may", "can", "might", "must", "shall", "should", "would", "could", "do", "does", "did",
    "going", "gonna", "calling", "trying", "looking", "having", "getting", "coming", "working", "waiting",
    "me", "you", "him", "her", "them", "us", "it", "that", "this", "these", "those", "what", "who", "why",
    "how", "when", "where", "which", "one", "two", "three", "first", "last", "next", "same", "other", "another",
    "more", "most", "less", "much", "many", "few", "lot", "bit", "thing", "things", "time", "day", "way",
    "work", "home", "house", "call", "phone", "number", "name", "help", "please", "thanks", "thank", "sir",
    "madam", "ma'am", "mum", "mom", "dad", "everyone", "everybody", "someone", "somebody", "anyone", "guys",
    "team", "support", "customer", "service", "doctor", "nurse", "reception", "front", "desk", "office",
    "about", "regarding", "concerning", "with", "without", "from", "for", "to", "of", "on", "in", "at", "by",
    "hi", "hello", "hey", "bye", "goodbye", "morning", "afternoon", "evening", "night", "today", "tomorrow",
    "yesterday", "week", "weekend", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "green", "brown", "white", "black", "gray", "grey", "red", "rose", "gold", "silver", "bell", "king", "page",
    "park", "hall", "wood", "woods", "field", "hill", "lane", "cook", "baker", "carpenter", "mason", "miller",
    "hunter", "fisher", "turner", "porter", "price", "cash", "bill", "mark", "grant", "chase", "hope", "joy",
    "faith", "grace", "april", "june", "august", "summer", "winter", "spring", "dawn", "love", "story",
    "worth", "sharp", "strong", "wise", "gay", "rich", "poor", "hard", "fast", "slow", "quick", "french",
    "english", "irish", "welsh", "german", "sweet", "major", "minor", "noble", "pope", "bishop", "dean",
    "judge", "official", "sure", "certain", "interested", "afraid", "worried", "concerned", "able", "unable",
    "calling", "phoning", "ringing", "writing", "speaking", "asking", "wondering", "hoping", "meant",
    "supposed", "told", "said", "set", "put", "get", "got", "make", "made", "take", "took", "give", "gave",
    "want", "need", "know", "think", "see", "say", "tell", "ask", "try", "use", "find", "go", "come", "leave",
    "book", "order", "pay", "cancel", "change", "check", "confirm", "update", "timer", "alarm", "reminder",
    "music", "song", "weather", "news", "lights", "light", "temperature", "volume", "minutes", "hours",
    "seconds", "percent", "degrees", "grams", "cups", "people", "everything", "nothing", "something",
    "anything", "definitely", "absolutely", "exactly", "correct", "perfect", "wonderful", "lovely", "excellent",
}

# Words an ASR writes for a digit it misheard ("oh four" -> "now for"): between two parts of one
# number read out, they are part of it.
DIGIT_SOUNDALIKES = {
    "for", "fore", "to", "too", "won", "ate", "owe", "now", "no", "so", "know", "tree", "free", "sex", "sick",
    "nein", "fine", "hive", "tin", "then", "hero", "uh", "um", "a", "and", "i", "eye", "time", "high", "low",
}

# After these, what is said up to the end of the sentence is a number however it was heard (on a
# telephone line Whisper writes "three five four" as "free time for"), with the entity it gives.
NUMBER_CUES = {
    ("number", "is"): "number", ("number", "in"): "number", ("number's",): "number", ("numbers", "are"): "number",
    ("account", "number"): "number", ("reference", "number"): "number", ("member", "number"): "number",
    ("policy", "number"): "number", ("customer", "number"): "number", ("order", "number"): "number",
    ("card", "number"): "id", ("social", "security"): "id", ("security", "number"): "id", ("pin", "is"): "id",
    ("reach", "me"): "phone", ("call", "me"): "phone", ("can", "reach"): "phone", ("text", "me"): "phone",
    ("phone", "is"): "phone", ("mobile", "is"): "phone", ("cell", "is"): "phone", ("extension",): "phone",
    ("phone", "number"): "phone", ("mobile", "number"): "phone", ("cell", "number"): "phone",
    ("telephone", "number"): "phone", ("contact", "number"): "phone", ("home", "number"): "phone",
    ("zip", "code"): "address", ("zipcode",): "address", ("postcode",): "address", ("postal", "code"): "address",
}
# Words that may sit between a number cue and the number ("call me back on", "my number is").
NUMBER_CUE_LINKS = {"is", "are", "me", "on", "at", "back", "it's", "its", "was", "please", "for", "of", ",", ":", "-"}

# Words a cased transcript always capitalises that are also in the census name lists: a
# capital says nothing about them being a name.
ALWAYS_CAPITALISED = {
    "i", "i'm", "i'll", "i've", "i'd", "god", "christmas", "easter", "internet", "english", "french", "german",
    "spanish", "italian", "dutch", "polish", "irish", "scottish", "welsh", "british", "american", "canadian",
    "mexican", "chinese", "japanese", "indian", "african", "european", "asian", "christian", "jewish", "muslim",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "tv", "ok", "okay", "uk", "us",
}

# What people say after a number or a date, and is not part of it ("... oh four eight eight, thanks").
CLOSINGS = {"thanks", "thank", "please", "bye", "goodbye", "cheers", "okay", "ok", "alright"}

# Wake words and assistant names: products, not people, though "Alexa" is also a first name.
WAKE_WORDS = {"alexa", "siri", "cortana", "google", "echo", "bixby", "computer", "jarvis"}

FILLERS = {"um", "uh", "er", "erm", "ah", "hmm", "mm", "like"}
