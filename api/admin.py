from django.contrib import admin

from .models import ApiClient, IdempotencyKey


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["application", "scopes"]
    search_fields = ["application__name", "application__client_id", "scopes"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ["client", "key", "status_code", "created_at"]
    search_fields = ["client", "key"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in IdempotencyKey._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
