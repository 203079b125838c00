"""The form of the launch page."""

from django import forms


class LaunchForm(forms.Form):
    count = forms.IntegerField(initial=10, min_value=1, max_value=100_000)
    interval = forms.FloatField(initial=1.0, min_value=0, max_value=60, help_text="Seconds.")
    fail = forms.BooleanField(required=False, help_text="Raise an error after the last line.")
