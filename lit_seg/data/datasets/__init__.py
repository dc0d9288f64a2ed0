"""One LightningDataModule per dataset, each on :class:`lit_seg.data.datamodule.SegmentationDataModule`."""
