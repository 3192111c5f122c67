from django.contrib import admin

from billing.admin_transitions import ServiceTransitionAdminMixin

from .models import CreditNote, CreditNoteLine, Refund
from .services import refund_mark_paid_out, refund_retry, refunds_pending_beyond_grace


class PendingBeyondGraceFilter(admin.SimpleListFilter):
    """Gateway refunds still pending after REFUND_PENDING_GRACE_SECONDS: a lost task, or a
    gateway that has not answered (refunds_reconcile sends them again every minute)."""

    title = "sending"
    parameter_name = "sending"

    def lookups(self, request, model_admin):
        return [("stuck", "Pending beyond the grace period")]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return queryset.filter(pk__in=refunds_pending_beyond_grace().values("pk"))
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Credit notes and refunds are written only by the refund engine."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CreditNoteLineInline(admin.TabularInline):
    model = CreditNoteLine
    extra = 0
    can_delete = False
    fields = ["invoice_line", "net", "tax", "total"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = ["payment", "method_name", "amount", "status", "gateway_reference", "failure_reason"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "clinic", "invoice", "kind", "amount", "amount_applied",
                    "amount_unapplied", "dispute_reason", "issued_at"]
    list_filter = ["clinic", "kind", "dispute_reason", "is_credit"]
    search_fields = ["number", "invoice__number", "account__name", "warren_id", "uuid"]
    date_hierarchy = "issued_at"
    list_select_related = ["clinic", "invoice", "dispute_reason"]
    inlines = [CreditNoteLineInline, RefundInline]


@admin.register(Refund)
class RefundAdmin(ServiceTransitionAdminMixin, ReadOnlyAdmin):
    fsm_fields = ["status"]
    fsm_services = {
        "retry": lambda refund, user: refund_retry(refund=refund, actor=user),
        "mark_paid_out": lambda refund, user: refund_mark_paid_out(refund=refund, actor=user),
    }
    list_display = ["pk", "invoice", "credit_note", "method_name", "amount", "currency", "status",
                    "gateway_reference", "created_at"]
    list_filter = [PendingBeyondGraceFilter, "status", "gateway", "invoice__clinic"]
    search_fields = ["invoice__number", "credit_note__number", "gateway_reference",
                     "idempotency_key"]
    list_select_related = ["invoice", "credit_note"]
