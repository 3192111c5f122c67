from django.contrib import admin

from .admin_transitions import ServiceTransitionAdminMixin
from .models import (
    Account,
    Clinic,
    DisputeReason,
    Invoice,
    InvoiceLine,
    NumberSeries,
    Payment,
    PaymentMethod,
    Service,
    TaxRate,
)
from .services import invoice_issue


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "currency", "timezone"]
    list_filter = ["currency"]
    search_fields = ["code", "name"]
    filter_horizontal = ["members"]
    fieldsets = [
        (None, {"fields": ["code", "name", "currency", "timezone", "address",
                           "tax_registration_number"]}),
        ("Expiry and reminders", {"fields": ["approval_expiry_days", "approval_reminder_hours"],
                                  "description": "Where approval is needed: how long an "
                                                 "approved request stays valid, and when a "
                                                 "waiting one reminds and escalates."}),
        ("Staff", {"fields": ["members"]}),
    ]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["number", "name", "clinic", "email", "phone", "is_active"]
    list_filter = ["clinic", "is_active"]
    search_fields = ["number", "name", "email", "phone"]


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
    list_display = ["name", "percentage", "clinic", "is_active"]
    list_filter = ["clinic", "is_active"]
    search_fields = ["name"]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "clinic", "unit_price", "tax_rate", "is_active"]
    list_filter = ["clinic", "is_active"]
    search_fields = ["code", "name"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "gateway", "clinic", "is_active"]
    list_filter = ["clinic", "kind", "is_active"]
    search_fields = ["name", "gateway"]


@admin.register(DisputeReason)
class DisputeReasonAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(NumberSeries)
class NumberSeriesAdmin(admin.ModelAdmin):
    list_display = ["clinic", "kind", "prefix", "padding", "last_value"]
    list_filter = ["clinic", "kind"]
    search_fields = ["prefix", "clinic__code"]
    readonly_fields = ["last_value"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ["description", "quantity", "unit_price", "tax_name", "tax_percentage", "net", "tax",
              "total", "credited_net", "credited_tax"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ["received_at", "method", "amount", "amount_refunded", "reference", "recorded_by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ServiceTransitionAdminMixin, admin.ModelAdmin):
    """Invoices are made and changed through the billing screens; here they are read, and a draft
    can be issued with the transition button."""

    fsm_fields = ["status"]
    fsm_services = {"issue": lambda invoice, user: invoice_issue(invoice=invoice, actor=user)}
    list_display = ["__str__", "clinic", "account", "status", "issue_date", "total", "amount_paid"]
    list_filter = ["clinic", "status", "issue_date"]
    search_fields = ["number", "account__name", "account__number"]
    date_hierarchy = "issue_date"
    list_select_related = ["clinic", "account"]
    inlines = [InvoiceLineInline, PaymentInline]
    readonly_fields = ["clinic", "account", "currency", "number", "issue_date", "status",
                       "subtotal", "tax_amount", "total", "amount_paid", "amount_refunded",
                       "amount_credited", "created_by", "created_at", "updated_at"]
    fields = [*readonly_fields[:6], "due_date", "notes", *readonly_fields[6:]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["invoice", "method", "amount", "amount_refunded", "reference", "received_at"]
    list_filter = ["method__clinic", "method"]
    search_fields = ["invoice__number", "reference"]
    list_select_related = ["invoice", "method"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
