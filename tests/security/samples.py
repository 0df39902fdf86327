"""Source samples shared by the licence tests."""

MERGE_INTERVALS = '''
def merge_intervals(intervals, tolerance=0):
    """Merge overlapping intervals."""
    ordered = sorted(intervals, key=lambda pair: pair[0])
    merged = []
    for start, end in ordered:
        if merged and start <= merged[-1][1] + tolerance:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
'''
"""A copyleft-looking function of ten lines, with a docstring."""
