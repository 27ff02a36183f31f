"""`{% load figures %}`: the dashboard's numbers formatted for people (monitoring.formatting)."""

from django import template

from monitoring import formatting

register = template.Library()

register.filter("count", formatting.count)
register.filter("rate", formatting.rate)
register.filter("percent", formatting.percent)
register.filter("ms", formatting.ms)
