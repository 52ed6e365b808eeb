"""Forms of the web UI. Validation mirrors the partner API's input rules; writes stay in services."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import directory
from accounts import services as account_services
from accounts.choices import Role, Scope
from accounts.choices import Service as OfficeService
from accounts.models import Institution, Office, User
from referrals import cleaning, rules
from referrals.choices import (
    SUBJECT_FIELDS,
    ConsentGivenBy,
    ConsentMethod,
    DataCategory,
    DocumentType,
    Service,
    Sex,
    Urgency,
)

from . import names, presentation


def _clean_text(value: str) -> str:
    """Free text: trimmed, and clean by the domain's rule (``referrals.cleaning``: no control or
    bidirectional characters; a browser's CRLF line breaks stored as newlines)."""
    value = cleaning.normalized_text((value or "").strip())
    error = cleaning.text_error(value)
    if error:
        raise forms.ValidationError(error)
    return value


class NationalityField(forms.ChoiceField):
    """An ISO 3166-1 alpha-3 code picked by the country's name in the page's language (``web.names``)."""

    def __init__(self, **kwargs):
        super().__init__(choices=names.country_choices, **kwargs)

    def to_python(self, value):
        return _clean_text(super().to_python(value)).upper()

    def valid_value(self, value):
        """Any code the domain admits (``referrals.cleaning``), whether or not the picker lists it."""
        return cleaning.country_error(value) is None


class LanguagesField(forms.MultipleChoiceField):
    """ISO 639 codes picked by name; a comma-separated list of codes (``es, ht``) is accepted too."""

    widget = forms.SelectMultiple(attrs={"size": 8})

    def __init__(self, **kwargs):
        super().__init__(choices=names.language_choices, **kwargs)

    def to_python(self, value):
        values = super().to_python(value)
        codes = [c.strip().lower() for v in values for c in v.split(",") if c.strip()]
        return list(dict.fromkeys(codes))

    def valid_value(self, value):
        """Any code the domain admits (``referrals.cleaning``), whether or not the picker lists it."""
        return cleaning.language_error([value]) is None


class SignInForm(AuthenticationForm):
    """Username and password (contract §5: the fields are ``username`` and ``password``)."""

    error_messages = {
        "invalid_login": _("The username or password is not correct."),
        "inactive": _("This account is inactive."),
    }


class OtpTokenForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code from your authenticator app"),
        min_length=6,
        max_length=8,
        validators=[RegexValidator(r"^\d{6,8}$", _("Enter the 6 digits shown by the app."))],
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "size": 8}
        ),
    )


class SubjectForm(forms.Form):
    """The person's data (every field is personal data, encrypted at rest) and the case summary."""

    given_name = forms.CharField(label=_("Given names"), max_length=200)
    family_name = forms.CharField(label=_("Family names"), max_length=200, required=False)
    date_of_birth = forms.DateField(
        label=_("Date of birth"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sex = forms.ChoiceField(label=_("Sex"), choices=Sex.choices, initial=Sex.UNKNOWN)
    nationality = NationalityField(
        label=_("Nationality"),
        required=False,
        help_text=_("Type the first letters of the country to find it; the most frequent come first."),
    )
    languages = LanguagesField(
        label=_("Languages"),
        required=False,
        help_text=_(
            "Choose one or more (Ctrl or ⌘ + click on a computer); typing a name jumps to it. "
            "The most frequent come first."
        ),
    )
    document_type = forms.ChoiceField(
        label=_("Document type"), choices=DocumentType.choices, initial=DocumentType.NONE
    )
    document_number = forms.CharField(label=_("Document number"), max_length=64, required=False)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    current_location = forms.CharField(label=_("Current location"), max_length=200, required=False)
    protection_needs = forms.CharField(
        label=_("Protection needs"),
        max_length=10000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    is_minor = forms.BooleanField(label=_("The person is a minor (under 18)"), required=False)
    summary = forms.CharField(
        label=_("Case summary"), max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    confirm_not_duplicate = forms.BooleanField(
        label=_("I checked: this is a different person, create the case anyway"), required=False
    )

    def clean_given_name(self):
        return _clean_text(self.cleaned_data["given_name"])

    def clean_family_name(self):
        return _clean_text(self.cleaned_data["family_name"])

    def clean_current_location(self):
        return _clean_text(self.cleaned_data["current_location"])

    def clean_protection_needs(self):
        return _clean_text(self.cleaned_data["protection_needs"])

    def clean_summary(self):
        return _clean_text(self.cleaned_data["summary"])

    def clean_document_number(self):
        return _clean_text(self.cleaned_data["document_number"])

    def clean_phone(self):
        return _clean_text(self.cleaned_data["phone"])

    def clean(self):
        """The domain's subject rules (referrals.rules), shown next to their fields."""
        data = super().clean()
        for name, messages in rules.subject_errors(data).items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
        return data

    def subject(self) -> dict:
        """The subject dict for ``referrals.services.case_create``."""
        return {name: self.cleaned_data[name] for name in SUBJECT_FIELDS}


class DocumentSearchForm(forms.Form):
    """Sent by POST only: a document number never appears in a URL."""

    document_number = forms.CharField(
        label=_("Document number"), max_length=64, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )

    def clean_document_number(self):
        return _clean_text(self.cleaned_data["document_number"])


class CaseSearchForm(forms.Form):
    """Search by document number, or by name and date of birth (possible matches, keyed indexes only).

    Sent by POST only: the terms never appear in a URL, a log or the browser's history.
    """

    given_name = forms.CharField(
        label=_("Given names"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    family_name = forms.CharField(
        label=_("Family names"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    date_of_birth = forms.DateField(
        label=_("Date of birth"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    document_number = forms.CharField(
        label=_("Document number"),
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_given_name(self):
        return _clean_text(self.cleaned_data["given_name"])

    def clean_family_name(self):
        return _clean_text(self.cleaned_data["family_name"])

    def clean_document_number(self):
        return _clean_text(self.cleaned_data["document_number"])

    def clean(self):
        data = super().clean()
        if not rules.names_or_document(data) and not self.errors:
            raise forms.ValidationError(_("Enter a document number, or the given and family names."))
        return data

    @property
    def by_name(self) -> bool:
        return rules.by_names(self.cleaned_data)


class ReferralForm(forms.Form):
    """Refer a case: where, what for, how urgent, why, and the person's consent to share which data."""

    to_institution = forms.ModelChoiceField(
        label=_("Refer to"), queryset=Institution.objects.none(), empty_label=None, to_field_name="code"
    )
    services = forms.MultipleChoiceField(
        label=_("Services requested"), choices=Service.choices, widget=forms.CheckboxSelectMultiple
    )
    urgency = forms.ChoiceField(
        label=_("Urgency"), choices=Urgency.choices, initial=Urgency.NORMAL, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("Reason for the referral"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("The receiving institution reads this. Write only what it needs to help."),
    )
    province = forms.ChoiceField(
        label=_("Province where the person needs the service"),
        required=False,
        choices=(),
        help_text=_(
            "Without a chosen office, the referral goes to the receiving institution's office in this "
            "province that offers the services; with none, to its national intake."
        ),
    )
    #: An office code of ``to_institution`` (``""``: routed by province at sending). Rendered by the template
    #: from ``office_options`` (paused offices shown, not selectable); checked in ``clean``.
    to_office = forms.CharField(label=_("Receiving office"), required=False, max_length=16)
    # A draft may be saved before the person consents (contract §7.1): it is sent only with consent. What
    # a given consent needs (who, how, when, which categories) is the domain's rule (referrals.rules).
    consent_given = forms.BooleanField(
        label=_("The person (or their guardian) consents to this referral"),
        required=False,
        help_text=_("Without consent the referral is kept as a draft: it cannot be sent."),
    )
    consent_given_by = forms.ChoiceField(
        label=_("Consent given by"), choices=ConsentGivenBy.choices, widget=forms.RadioSelect, required=False
    )
    consent_method = forms.ChoiceField(
        label=_("Consent method"), choices=ConsentMethod.choices, widget=forms.RadioSelect, required=False
    )
    consent_obtained_at = forms.DateTimeField(
        label=_("Consent obtained at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        required=False,
    )
    data_categories = forms.MultipleChoiceField(
        label=_("Data the person agrees to share"),
        choices=DataCategory.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Share only what the receiving institution needs. Nothing else leaves your institution."),
        required=False,
    )

    def __init__(self, *args, institution: Institution, sender_province: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_institution"].queryset = Institution.objects.exclude(pk=institution.pk).order_by(
            "code"
        )
        self.fields["to_institution"].label_from_instance = presentation.institution_label
        self.fields["province"].choices = [("", "—"), *names.province_choices()]
        self.sender_institution = institution
        self.sender_province = sender_province
        if not self.is_bound:
            self.initial.setdefault(
                "consent_obtained_at", timezone.localtime().replace(second=0, microsecond=0)
            )
            if sender_province:
                self.initial.setdefault("province", sender_province)

    def _value(self, name):
        """A field's raw value, bound or initial (to list the offices before the form is checked)."""
        if self.is_bound:
            return self.data.getlist(name) if name == "services" else self.data.get(name)
        return self.initial.get(name)

    def chosen_institution(self) -> Institution | None:
        code = self._value("to_institution")
        queryset = self.fields["to_institution"].queryset
        return queryset.filter(code=code).first() if code else queryset.first()

    def office_options(self) -> list[dict]:
        """Every office of the institutions one may refer to, nearest province first (the form's province,
        else the sender's office's): ``offered`` — of the chosen institution and offering every chosen
        service (``directory.offices_offering``; the others hidden) —, ``accepting`` (paused ones shown
        marked, never selectable), ``checked``."""
        province = self._value("province") or self.sender_province or None
        chosen = self.chosen_institution()
        services = [s for s in (self._value("services") or []) if isinstance(s, str)]
        offered = set()
        if chosen is not None:
            offered = {o.pk for o in directory.offices_offering(chosen, services, province=province)}
        every = directory.offices().exclude(institution=self.sender_institution)
        current = self._value("to_office") or ""
        return [
            {
                "office": office,
                "offered": office.pk in offered,
                "accepting": office.is_accepting(),
                "near": bool(province) and office.province == province,
                "checked": office.pk in offered and office.code == current,
            }
            for office in directory.nearest_first(every, province)
        ]

    def clean_reason(self):
        return _clean_text(self.cleaned_data["reason"])

    def _clean_office(self, data) -> None:
        """``to_office``: one of the offices listed for the institution and services, accepting referrals."""
        code = data.get("to_office") or ""
        data["to_office"] = None
        if not code or not data.get("to_institution") or "services" not in data:
            return
        offered = directory.offices_offering(data["to_institution"], data["services"])
        office = next((o for o in offered if o.code == code), None)
        if office is None:
            self.add_error("to_office", _("Choose one of the offices listed, or let the province decide."))
        elif not office.is_accepting():
            self.add_error("to_office", _("This office is paused: choose another one."))
        else:
            data["to_office"] = office

    def clean(self):
        """The domain's consent rules (referrals.rules), shown next to their fields; the office."""
        data = super().clean()
        self._clean_office(data)
        for name, messages in rules.consent_errors(self._consent(data)).items():
            field = "data_categories" if name == "data_categories" else f"consent_{name}"
            for message in messages:
                if field not in self.errors:  # a field's own error (missing, malformed) is enough
                    self.add_error(field if field in self.fields else None, message)
        return data

    @staticmethod
    def _consent(data) -> dict:
        return {
            "given": bool(data.get("consent_given")),
            "given_by": data.get("consent_given_by") or "",
            "method": data.get("consent_method") or "",
            "obtained_at": data.get("consent_obtained_at"),
            "data_categories": list(data.get("data_categories") or []),
        }

    def consent(self) -> dict:
        """The consent record for the service: given or not (a draft without consent)."""
        return self._consent(self.cleaned_data)


class ActionForm(forms.Form):
    """The text a lifecycle action may need (reason or outcome)."""

    reason = forms.CharField(required=False, max_length=20000)
    outcome = forms.CharField(required=False, max_length=20000)

    def clean_reason(self):
        return _clean_text(self.cleaned_data["reason"])

    def clean_outcome(self):
        return _clean_text(self.cleaned_data["outcome"])


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("New note"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Write the note first.")},
    )

    def clean_body(self):
        value = _clean_text(self.cleaned_data["body"])
        if not value:
            raise forms.ValidationError(_("Write the note first."))
        return value


class WithdrawConsentForm(forms.Form):
    reason = forms.CharField(
        label=_("Why was consent withdrawn?"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": _("A reason is required for this action.")},
    )

    def clean_reason(self):
        return _clean_text(self.cleaned_data["reason"])


EMAIL_EVENT_LABELS = {
    "referral.requested": _("A referral arrives for my institution"),
    "referral.status_changed": _("A referral I take part in changes status"),
    "referral.note_added": _("A note is added to a referral"),
    "referral.overdue": _("A referral is overdue"),
}


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language"), choices=[("es", "Español"), ("en", "English")], widget=forms.RadioSelect
    )

    def __init__(self, *args, event_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        for event_type in event_types:
            self.fields[self.field_name(event_type)] = forms.BooleanField(
                label=EMAIL_EVENT_LABELS.get(event_type, event_type), required=False
            )
        self.event_types = list(event_types)

    @staticmethod
    def field_name(event_type: str) -> str:
        return "email_" + event_type.replace(".", "_")

    def email_fields(self):
        return [self[self.field_name(t)] for t in self.event_types]

    def email_preferences(self) -> dict[str, bool]:
        return {t: bool(self.cleaned_data.get(self.field_name(t))) for t in self.event_types}


class AuditFilterForm(forms.Form):
    """Filters of the audit log (codes or labels, usernames, dates, ids, references: safe in a URL)."""

    action = forms.CharField(
        label=_("Action"),
        required=False,
        max_length=64,
        help_text=_("A code or (part of) its description, e.g. “acceso denegado”."),
        validators=[RegexValidator(r"^[\w .,'’()-]+$", _("An action code or description."))],
    )
    actor = forms.CharField(
        label=_("User or client"),
        required=False,
        max_length=160,
        validators=[RegexValidator(r"^[\w.@+:\- ]+$", _("A username."))],
    )
    date_from = forms.DateField(
        label=_("Since"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    object_id = forms.CharField(
        label=_("Object (reference or id)"),
        required=False,
        max_length=64,
        help_text=_("A case's or referral's reference, or the id shown (its first 8 characters suffice)."),
        validators=[RegexValidator(r"^[A-Za-z0-9_.:-]+$", _("A reference or an id."))],
    )


class StaffUserForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    email = forms.EmailField(label=_("Work e-mail"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, widget=forms.RadioSelect)
    office = forms.ChoiceField(
        label=_("Office"),
        required=False,
        choices=(),
        help_text=_("National staff work for every office of the institution and for its national intake."),
    )
    language = forms.ChoiceField(label=_("Language"), choices=[("es", "Español"), ("en", "English")])
    password1 = forms.CharField(
        label=_("Initial password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("Repeat the password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, editing: User | None = None, offices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        self.offices = {office.code: office for office in offices}
        self.fields["office"].choices = [
            ("", _("National (no office)")),
            *[(o.code, f"{o.name} ({names.province_name(o.province)})") for o in offices],
        ]
        if editing is not None:
            self.fields["username"].disabled = True
            self.fields["password1"].required = False
            self.fields["password2"].required = False
            self.fields["password1"].label = _("New password (leave empty to keep it)")

    def clean_username(self):
        # The accounts service decides (form, taken); asked here to show the error beside the field.
        username = self.cleaned_data["username"]
        if self.editing is None:
            try:
                account_services.validate_new_username(username)
            except forms.ValidationError as exc:
                raise forms.ValidationError(exc.message_dict["username"]) from None
        return username

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 or p2:
            if p1 != p2:
                self.add_error("password2", _("The two passwords differ."))
            else:
                probe = self.editing or User(username=data.get("username", ""), email=data.get("email", ""))
                try:
                    account_services.validate_new_password(p1, probe)
                except forms.ValidationError as exc:
                    self.add_error("password1", exc.message_dict["password"])
        return data

    def clean_office(self) -> Office | None:
        return self.offices.get(self.cleaned_data["office"] or "")

    def add_service_errors(self, exc: forms.ValidationError) -> None:
        """The accounts service's refusal shown beside the fields it names."""
        add_service_errors(self, exc, {"password": "password1"})


class OfficeForm(forms.Form):
    """An office of the admin's institution (contract §7.2); the rules are ``check_office_fields``'s."""

    code = forms.CharField(
        label=_("Code"),
        max_length=16,
        help_text=_(
            "2–16 capital letters, digits or _ (e.g. DARIEN). It names the office and never changes."
        ),
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    province = forms.ChoiceField(label=_("Province"), choices=())
    services = forms.MultipleChoiceField(
        label=_("Services offered"), choices=OfficeService.choices, widget=forms.CheckboxSelectMultiple
    )
    languages = LanguagesField(label=_("Languages served in"), required=False)

    def __init__(self, *args, editing: Office | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["province"].choices = names.province_choices()
        self.editing = editing
        if editing is not None:
            self.fields["code"].disabled = True

    def clean_name(self):
        return _clean_text(self.cleaned_data["name"])

    def clean(self):
        data = super().clean()
        try:
            account_services.check_office_fields(
                code=data.get("code") or "",
                name=data.get("name") or "",
                province=data.get("province") or "",
                services=list(data.get("services") or []),
                languages=list(data.get("languages") or []),
            )
        except forms.ValidationError as exc:
            for field, errors in exc.message_dict.items():
                if field not in self.errors:
                    self.add_error(field if field in self.fields else None, errors)
        return data


class OfficePauseForm(forms.Form):
    paused_until = forms.DateField(
        label=_("Paused until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: until someone resumes it. The office accepts referrals again the day after."),
    )
    pause_reason = forms.CharField(
        label=_("Reason shown to senders"),
        required=False,
        max_length=200,
        help_text=_("About the office, never about a person (e.g. “no lawyer until March”)."),
    )

    def clean_pause_reason(self):
        return _clean_text(self.cleaned_data["pause_reason"])


class DirectoryFilterForm(forms.Form):
    """``/directory/`` filters: codes only."""

    province = forms.ChoiceField(label=_("Province"), required=False, choices=())
    service = forms.ChoiceField(
        label=_("Service"), required=False, choices=[("", _("Any")), *OfficeService.choices]
    )
    language = forms.ChoiceField(label=_("Language"), required=False, choices=())
    accepting = forms.ChoiceField(
        label=_("Accepting referrals"),
        required=False,
        choices=[("", _("Any")), ("true", _("Accepting now")), ("false", _("Paused"))],
    )

    def __init__(self, *args, languages=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["province"].choices = [("", _("Any")), *names.province_choices()]
        self.fields["language"].choices = [("", _("Any")), *[(c, names.language_name(c)) for c in languages]]

    def filters(self) -> dict:
        """The directory's keyword arguments (``accounts.directory.offices``)."""
        data = self.cleaned_data
        accepting = {"true": True, "false": False}.get(data.get("accepting") or "")
        return {
            "province": data.get("province") or None,
            "service": data.get("service") or None,
            "language": data.get("language") or None,
            "accepting": accepting,
        }


def add_service_errors(form: forms.Form, exc, fields: dict[str, str]) -> None:
    """A service's ``ValidationError`` on a form: beside each field it names (renamed by ``fields``)."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            target = fields.get(name, name)
            form.add_error(target if target in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class ApiClientForm(forms.Form):
    name = forms.CharField(
        label=_("Name of the partner system"),
        max_length=200,
        validators=[RegexValidator(r"^[\w .()\-]+$", _("Letters, digits, spaces and . ( ) - only."))],
    )
    scopes = forms.MultipleChoiceField(
        label=_("Permissions (scopes)"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_on = forms.DateField(
        label=_("Expires on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def add_service_errors(self, exc: forms.ValidationError) -> None:
        """The accounts service decides the expiry (in the future): shown beside the date."""
        add_service_errors(self, exc, {"expires_at": "expires_on"})


class WebhookForm(forms.Form):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(label=_("Events"), choices=(), widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, event_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = [(e, e) for e in event_types]
