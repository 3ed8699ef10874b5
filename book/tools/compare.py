"""Print the numbers of a chapter's reference runs side by side:
`python -m book.tools.compare googlenet [--refresh]`.

They are the numbers the prose quotes (run_numbers.py computes them from the kept runs); with
--refresh the notebooks get the figure redrawn and the numbers quoted again (showing.refresh).
"""
import argparse

from book.tools import chapters, kept_runs, run_numbers, showing
from book.tools.run_numbers import MISSING


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('chapter', choices=chapters.chapters())
    parser.add_argument('--refresh', action='store_true',
                        help='also redraw the figure, embed it and quote the numbers in the '
                             'notebooks')
    args = parser.parse_args(argv)
    refs = kept_runs.load_all(args.chapter)
    facts = run_numbers.Facts.of(args.chapter)
    if args.refresh:
        for path in showing.refresh(args.chapter, refs):
            print(f'updated {path.relative_to(chapters.ROOT)}')
    values = run_numbers.quotes(refs, facts)
    print(f'{"framework":<12}{"current":>8}{"epochs":>7}{"val acc":>9}{"val loss":>9}'
          f'{"train loss":>11}{"minutes":>8}{"examples/s":>11}{"plateau":>8}')
    for fw, ref in refs.items():
        n = lambda field: values.get(f'{fw}.{field}', MISSING)
        print(f'{fw:<12}{str(ref.current):>8}{n("epochs"):>7}{n("val_acc"):>9}{n("val_loss"):>9}'
              f'{n("train_loss"):>11}{n("minutes"):>8}{n("examples_per_s"):>11}'
              f'{n("plateau_epochs"):>8}')
    for epoch in facts.gap_epochs:
        print(f'largest gap after epoch {epoch}: train loss {values[f"gap.e{epoch}.train_loss"]}, '
              f'val acc {values[f"gap.e{epoch}.val_acc"]}')
    for field in ('train_loss', 'val_acc'):
        print(f'largest gap of {field} over all epochs: {values[f"gap.max.{field}"]}, after epoch '
              f'{values[f"gap.max.{field}_epoch"]}')


if __name__ == '__main__':
    main()
