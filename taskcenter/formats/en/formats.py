"""Every date and time the console shows: year first, seconds, and the zone, so the spacing of retries
can be read off a page and nobody wonders whose "8:15" it is. Attempts add milliseconds
(callbacks.templatetags.console)."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
