import hashlib
import os

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from django.views.decorators.csrf import csrf_exempt

from .models import Note
from .tasks import write_note


def index(request):
    return render(request, "guestbook/index.html", {
        "release_id": settings.RELEASE_ID,
        "notes": Note.objects.all()[:20],
        "note_count": Note.objects.count(),
    })


def health(request):
    """200 when the app can reach its database; the deploy calls it after each switch."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "release": settings.RELEASE_ID})


@csrf_exempt
@require_POST
def add_note(request):
    """Write a note now (the benchmark's writes while a migration holds a lock on the table)."""
    note = Note.objects.create(text=request.POST.get("text", "")[:200] or "a note", created_by="web")
    return JsonResponse({"id": note.id, "release": settings.RELEASE_ID}, status=201)


@csrf_exempt
@require_POST
def start_note_task(request):
    """Queue a Celery task that writes a note; the index page shows it once a worker ran it."""
    text = request.POST.get("text", "")[:200] or "from a task"
    delay = min(float(request.POST.get("delay", 0) or 0), 60)
    result = write_note.delay(text, delay)
    return JsonResponse({"task_id": result.id}, status=202)


def cached(request):
    """The first call stores a value in the cache, later ones find it: X-Cache says which."""
    found = cache.get("guestbook-cached-view")
    if found is None:
        cache.set("guestbook-cached-view", settings.RELEASE_ID, 300)
    response = JsonResponse({"release": found or settings.RELEASE_ID})
    response["X-Cache"] = "miss" if found is None else "hit"
    return response


def client(request):
    """The client as Django sees it: its address, and whether it came over HTTPS (the tests check
    what a load balancer in front passes on)."""
    return JsonResponse({"remote_addr": request.META.get("REMOTE_ADDR"), "secure": request.is_secure()})


def environment_digest(request, name):
    """The SHA-256 of one PROBE_* variable of the environment this process runs with: the tests
    check what the app sees, without the app ever showing a value, or a digest of anything else."""
    if not name.startswith("PROBE_"):
        raise Http404(name)
    value = os.environ.get(name)
    digest = hashlib.sha256(value.encode()).hexdigest() if value is not None else None
    return JsonResponse({"name": name, "sha256": digest})
