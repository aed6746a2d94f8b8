"""Stand-in for the installed mmpretrain package in tests: only the base configs AWML scopes with
``mmpretrain::`` (copied from open-mmlab/mmpretrain v1.2.0, configs/_base_/), where mmengine looks for them
(``<package>/.mim/configs``). Nothing here is imported by the plugin."""
