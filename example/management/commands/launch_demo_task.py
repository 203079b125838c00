"""Send ``timed_print_task`` to the workers and print its task id, alone, for scripts."""

from django.core.management.base import BaseCommand

from example.tasks import timed_print_task


class Command(BaseCommand):
    help = "Launch timed_print_task and print its task id."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=10, help="Lines to print.")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between lines.")
        parser.add_argument("--fail", action="store_true", help="Fail after the last line.")

    def handle(self, *args, count, interval, fail, **options):
        result = timed_print_task.delay(count=count, interval=interval, fail=fail)
        self.stdout.write(result.id)
